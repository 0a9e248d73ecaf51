#!/usr/bin/env python3
"""Checks the answers the Swift HTTP tests received against QRLogin's OpenAPI document.

The tests write one JSON object per answer (method, path, status, content type, body) when
QRLOGIN_RECORD_RESPONSES names a file (Tests/QRLoginServerTests/Support/ResponseRecorder.swift).
For each answer this finds the operation whose path template matches, and fails when the
status is not among its responses, the content type is not among that response's media types,
or a JSON body does not validate against the media type's schema (OpenAPI 3.1 schemas, with
`$ref`s into the document). Answers to paths the document does not have (tests probe unknown
paths on purpose) are counted, not judged.

Usage: validate_responses.py OPENAPI_JSON RECORDED_JSONL
"""
import json
import re
import sys
from collections import Counter
from urllib.parse import urlsplit

from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:qrlogin-openapi"


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(document: dict, node: dict) -> tuple[dict, str | None]:
    """Follows a local `$ref` (components/responses); returns the node and its JSON pointer."""
    ref = None
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        target = document
        for part in ref.lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node, ref


def templates(document: dict) -> list[tuple[re.Pattern, str]]:
    """Path templates as regular expressions, literal segments first (`/oauth/jwks` before `/{x}`)."""
    out = []
    for path in document["paths"]:
        regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"
        literal = sum(1 for segment in path.split("/") if segment and "{" not in segment)
        out.append((re.compile(regex), path, literal))
    out.sort(key=lambda t: -t[2])
    return [(regex, path) for regex, path, _ in out]


def main() -> int:
    document = json.load(open(sys.argv[1], encoding="utf-8"))
    registry = Registry().with_resource(BASE, Resource.from_contents(document, default_specification=DRAFT202012))
    paths = templates(document)
    failures: list[str] = []
    judged, unknown, schemas = Counter(), Counter(), 0
    seen_failures = set()

    for number, line in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
        answer = json.loads(line)
        method, status = answer["method"].lower(), str(answer["status"])
        path = urlsplit(answer["path"]).path
        template = next((t for regex, t in paths if regex.match(path)), None)
        operation = document["paths"].get(template, {}).get(method) if template else None
        if operation is None:
            unknown[f"{answer['method']} {path if template is None else template} -> {status}"] += 1
            continue
        name = f"{answer['method']} {template} {status}"
        judged[name] += 1
        responses = operation.get("responses", {})
        response = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        if response is None:
            failures.append(f"{name}: status not in the document (documented: {sorted(responses)}); body: {answer['body'][:200] if answer['body'] else ''}")
            continue
        key = status if status in responses else (status[0] + "XX" if status[0] + "XX" in responses else "default")
        response, ref = resolve(document, response)
        base = ref if ref else pointer("paths", template, method, "responses", key)
        content = response.get("content")
        media = answer["contentType"].split(";")[0].strip().lower()
        if not content:
            if answer["body"] and method != "head":
                failures.append(f"{name}: the document describes no body, the answer has {media}: {answer['body'][:120]}")
            continue
        # Media type keys may carry parameters (`application/json; charset=utf-8`).
        key_for = {k.split(";")[0].strip().lower(): k for k in content}
        if media not in key_for:
            failures.append(f"{name}: content type {media!r} not among {sorted(content)}")
            continue
        media_key = key_for[media]
        schema = content[media_key].get("schema")
        if schema is None or answer["body"] is None or not media.endswith("json") or method == "head":
            continue
        try:
            body = json.loads(answer["body"])
        except json.JSONDecodeError as error:
            failures.append(f"{name}: {media} body is not JSON ({error}): {answer['body'][:120]}")
            continue
        validator = OAS31Validator({"$ref": BASE + base + "/" + "/".join(["content", media_key.replace("~", "~0").replace("/", "~1"), "schema"])}, registry=registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        schemas += 1
        for error in errors[:3]:
            message = f"{name}: at {'/'.join(map(str, error.path)) or '(root)'}: {error.message[:200]}"
            if message not in seen_failures:
                seen_failures.add(message)
                failures.append(message + f"  [answer {number}]")

    print(f"validate_responses: {sum(judged.values())} answers of {len(judged)} kinds (operation, status) judged, "
          f"{schemas} JSON bodies validated against their schemas; {sum(unknown.values())} answers to paths or methods "
          f"the document does not have (probes): {dict(unknown.most_common(8))}")
    if sum(judged.values()) < 100:
        print(f"FAILED: only {sum(judged.values())} answers were recorded; the HTTP tests record through API.call")
        return 1
    if failures:
        kinds = Counter(re.sub(r"  \[answer \d+\]$", "", f) for f in failures)
        print(f"FAILED: {len(failures)} answers break the document ({len(kinds)} kinds):")
        for failure, count in kinds.most_common(60):
            print(f"  {failure}" + (f"  (x{count})" if count > 1 else ""))
        return 1
    print("ok: every recorded answer matches the document")
    return 0


if __name__ == "__main__":
    sys.exit(main())
