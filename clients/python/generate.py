"""The client's stubs for ../../protos: a local buf plugin, run by `buf generate` with the root buf.gen.yaml.

Do not run it by hand: `scripts/gen_protos.sh` regenerates every generated tree with one `buf generate`
(this plugin writes clients/python/src/driftwise_client/v1), and `scripts/check_generated.py` fails
when the committed files are stale.

buf hands the plugin a CodeGeneratorRequest (the compiled protos and their imports). The plugin writes
them as a FileDescriptorSet and runs grpcio-tools' bundled protoc on it (`--descriptor_set_in`) with
the python, grpc_python and mypy-protobuf (typed `.pyi` for messages and stubs) generators, so the
output depends only on the pinned dev tools and is byte-for-byte reproducible; it answers with the
files in a CodeGeneratorResponse.

Two adjustments make the result that of protoc compiling protos/ itself, byte for byte:
- the descriptors buf sends carry what protoc's own parse leaves out: managed mode's file options
  (java_package, go_package, ...: the root buf.gen.yaml enables managed mode for the Go plugins, and
  it applies to every plugin) and a json_name on every field. Python never reads either, but the
  serialized descriptors embedded in `*_pb2.py` would change, so the file options managed mode
  controls (protos/ set none of them: they stay language-neutral) and default json_names are dropped;
- protoc writes `driftwise/v1/*_pb2.py` with absolute imports (`from driftwise.v1 import common_pb2`);
  those would import the *server* package. The client must stand alone, so the imports (and the module
  names the message classes are registered under) are rewritten to `driftwise_client.v1`. The proto
  package stays `driftwise.v1`: the wire format and the descriptor file names are unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

PROTO_DIR = "driftwise/v1/"  # where protoc writes the package's modules; the plugin's `out` is that package
INIT_TEXT = '"""Generated from protos/driftwise/v1 by clients/python/generate.py. Do not edit."""\n'

# (pattern, replacement): only Python import paths and module names; never the proto package name
# (`.driftwise.v1.Item` in descriptors and docstrings is the wire-level name and must stay).
REWRITES = [
    (re.compile(r"^from driftwise\.v1 import ", re.MULTILINE), "from driftwise_client.v1 import "),
    (
        re.compile(r"BuildTopDescriptorsAndMessages\(DESCRIPTOR, 'driftwise\.v1\."),
        "BuildTopDescriptorsAndMessages(DESCRIPTOR, 'driftwise_client.v1.",
    ),
    (re.compile(r"generated code in driftwise/v1/"), "generated code in driftwise_client/v1/"),
]
LEFTOVER = re.compile(r"^\s*(from driftwise\.v1\b|import driftwise\.v1\b)", re.MULTILINE)

# The file options buf's managed mode sets (https://buf.build/docs/generate/managed-mode).
MANAGED_FILE_OPTIONS = (
    "cc_enable_arenas",
    "csharp_namespace",
    "go_package",
    "java_multiple_files",
    "java_outer_classname",
    "java_package",
    "java_string_check_utf8",
    "objc_class_prefix",
    "optimize_for",
    "php_metadata_namespace",
    "php_namespace",
    "ruby_package",
)


def _json_name(name: str) -> str:
    """protoc's default json_name: snake_case to lowerCamelCase (ToJsonName in protobuf's descriptor.cc)."""
    out, upper = [], False
    for c in name:
        if c == "_":
            upper = True
        elif upper:
            out.append(c.upper())
            upper = False
        else:
            out.append(c)
    return "".join(out)


def _drop_default_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    for field in [*message.field, *message.extension]:
        if field.HasField("json_name") and field.json_name == _json_name(field.name):
            field.ClearField("json_name")
    for nested in message.nested_type:
        _drop_default_json_names(nested)


def as_written(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """A copy of one of buf's descriptors as protoc's own parse of the .proto file would have it."""
    file = descriptor_pb2.FileDescriptorProto.FromString(file.SerializeToString())
    for option in MANAGED_FILE_OPTIONS:
        file.options.ClearField(option)
    if not file.options.ByteSize():
        file.ClearField("options")
    for message in file.message_type:
        _drop_default_json_names(message)
    for field in file.extension:
        if field.HasField("json_name") and field.json_name == _json_name(field.name):
            field.ClearField("json_name")
    return file


def rewrite(name: str, text: str) -> str:
    """The module `name` (e.g. common_pb2.py) with its imports moved to driftwise_client.v1."""
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    if LEFTOVER.search(text):
        raise RuntimeError(f"{name}: an import of driftwise.v1 was not rewritten")
    return text


def _protoc(args: list[str]) -> None:
    """grpcio-tools' protoc in this process; mypy-protobuf's plugins chat on stderr ("Writing mypy
    to ..."): show it only on failure."""
    with tempfile.TemporaryFile() as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            status = protoc.main(["protoc", *args])
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if status != 0:
            log.seek(0)
            raise RuntimeError("protoc failed:\n" + log.read().decode(errors="replace"))


def generate(request: plugin_pb2.CodeGeneratorRequest) -> dict[str, str]:
    """{file name in driftwise_client/v1: content} for the request's files to generate."""
    outside = [f for f in request.file_to_generate if not f.startswith(PROTO_DIR)]
    if outside:
        raise RuntimeError(f"only {PROTO_DIR}*.proto go into driftwise_client.v1, not {outside}")
    bin_dir = Path(sys.executable).parent  # mypy-protobuf's plugins, also when the venv is not activated
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp) / "protos.binpb"
        descriptor_set = descriptor_pb2.FileDescriptorSet(file=[as_written(f) for f in request.proto_file])
        descriptors.write_bytes(descriptor_set.SerializeToString())
        raw = Path(tmp) / "out"
        raw.mkdir()
        _protoc(
            [
                f"--descriptor_set_in={descriptors}",
                f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
                f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
                f"--python_out={raw}",
                f"--grpc_python_out={raw}",
                f"--mypy_out={raw}",
                f"--mypy_grpc_out={raw}",
                *request.file_to_generate,
            ]
        )
        files = {}
        for path in sorted(raw.rglob("*")):
            if path.is_dir():
                continue
            name = path.relative_to(raw).as_posix()
            if not name.startswith(PROTO_DIR) or "/" in name.removeprefix(PROTO_DIR):
                raise RuntimeError(f"protoc wrote {name}, outside {PROTO_DIR}")
            name = name.removeprefix(PROTO_DIR)
            files[name] = rewrite(name, path.read_text())
    files["__init__.py"] = INIT_TEXT
    return files


def main() -> None:
    if sys.stdin.isatty():
        raise SystemExit(f"{__file__} is a buf plugin (it reads a CodeGeneratorRequest): see its docstring")
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    try:
        for name, content in sorted(generate(request).items()):
            response.file.add(name=name, content=content)
    except RuntimeError as error:
        response.error = str(error)
    sys.stdout.buffer.write(response.SerializeToString())


if __name__ == "__main__":
    main()
