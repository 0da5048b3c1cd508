"""Seed inputs for the fuzz targets: small real documents of each kind, and the adversarial shapes the
hardening issue names (aliases, deep nesting, big and non-finite numbers, duplicate keys, odd tags), so
a mutation starts next to what matters."""

from __future__ import annotations

import json

from tests.helpers import ROOT

_RECORD = (ROOT / "data" / "image_generation" / "Deliberate.yaml").read_bytes()

#: shapes a loader must answer with one line, each a complete document
ADVERSARIAL_YAML = [
    b"name: x\nbomb: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
    b"name: x\nname: y\n",
    b"name: x\nsize_on_disk_bytes: 123456789012345678901234567890\n",
    b"name: x\nsize_on_disk_bytes: .inf\n",
    b"name: x\nsize_on_disk_bytes: .nan\n",
    b"name: x\nversion: !!timestamp foo\n",
    b"name: x\nversion: !!int\n",
    b"name: x\n1: one\n",
    b"name: x\n? [a, b]\n: c\n",
    b"name: x\ndescription: !!python/object:os.system echo\n",
    b"[" * 5000 + b"]" * 5000,
    b"name: x\n" + b"a:\n " * 200 + b"b\n",
    b"\xff\xfe\x00",
    b"name: \"\\ud800\"\n",
]
ADVERSARIAL_JSON = [
    b'{"name": "x", "name": "y"}',
    b'{"name": "x", "size_on_disk_bytes": 1e400}',
    b'{"name": "x", "size_on_disk_bytes": NaN}',
    b'{"name": "x", "size_on_disk_bytes": 123456789012345678901234567890}',
    b"[" * 100000 + b"]" * 100000,
    b'{"name": "\\ud800"}',
]

_IMAGE_LEGACY = json.dumps({"x": {"name": "x", "type": "ckpt", "baseline": "stable diffusion 1", "nsfw": False,
                                  "config": {"files": [{"path": "x.ckpt", "sha256sum": "0" * 64}],
                                             "download": [{"file_name": "x.ckpt", "file_path": "",
                                                           "file_url": "https://example.org/x.ckpt"}]}}},
                           indent=4).encode()
_CSV = (b"name,parameters_bn,display_name,url,baseline,description,style,tags,instruct_format,settings\n"
        b"org/model-7B,7,Model,https://huggingface.co/org/model,mistral,A model.,generalist,chat,ChatML,"
        b'"{""temperature"": 0.7}"\n')

SEEDS: dict[str, list[bytes]] = {
    "data_record": [_RECORD, *ADVERSARIAL_YAML],
    "data_record_json": [json.dumps({"name": "x", "nsfw": False}).encode(), *ADVERSARIAL_JSON],
    "legacy_json": [_IMAGE_LEGACY, b'{"x": {"name": "x", "config": null}}', b'{"x": {"name": ["x"]}}',
                    b'{"x": {"name": "x", "config": {"files": [{"path": ["a"]}]}}}', *ADVERSARIAL_JSON],
    "legacy_csv": [_CSV, _CSV.replace(b",7,", b",inf,"), _CSV.replace(b",7,", b",1e400,"),
                   _CSV.replace(b'"{""temperature"": 0.7}"', b'"\n"'), _CSV.replace(b"0.7", b"NaN"),
                   _CSV + b"a,b,c\n", b"\xef\xbb\xbf" + _CSV,
                   # found by the fuzzer: a quote left open in the header swallows a line break into a
                   # column name, which the error message quoted over two lines
                   _CSV.replace(b"baseline,", b'baseline,"{', 1)],
    "manifest": [json.dumps({"generation": 3, "files": {"api/x.json": {"sha256": "a" * 64, "bytes": 10}},
                             "source_commit": "b" * 40}).encode(),
                 b'{"generation": 1e400, "files": {}}', b'{"generation": 99999999999999999999999, "files": {}}'],
    "document": [b'{"a": {"name": "a"}}', b'{"image_generation": {"old": "new"}}', b"[]"],
    "client_state": [b'{"version": 1, "generation": 3, "sources": {"cdn": {"etag": 1}}}',
                     b'{"version": 1, "generation": "x", "manifest": {"entries": []}}', b"null"],
    "serve_request": [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                      b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"GET /api/%ff%fe HTTP/1.1\r\n\r\n",
                      b"OPTIONS * HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nRange: bytes=5-1\r\n\r\n"],
}
