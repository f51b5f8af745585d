"""Fuzz target `userdata`: the guest agent's user-data reader (MIME multipart, gzip, sniffing,
#cloud-config YAML), under atheris (libFuzzer for Python), since that code is the Python
embedded in crates/gureum-image/src/guest/gureum-init.sh and runs inside every instance.

`read_user_data` must return for any user-data, never raise: an exception there is a
traceback instead of the user's scripts running. The agent's source is loaded from the shell
script as it ships, minus its last line (`sys.exit(main())`); nothing it does to the host
(apply_config, scripts) runs here.

Usage (scripts/fuzz does this): python fuzz/userdata.py [libFuzzer flags] CORPUS_DIR
"""

import sys
import types
from pathlib import Path

import atheris

SCRIPT = Path(__file__).resolve().parents[1] / "crates/gureum-image/src/guest/gureum-init.sh"


def load_agent():
    text = SCRIPT.read_text()
    src = text.split("<<'PYTHON'\n", 1)[1].split("\nPYTHON\n", 1)[0]
    last = "sys.exit(main())"
    assert src.rstrip().endswith(last), "the agent's Python no longer ends with its main call"
    src = src.rstrip()[: -len(last)]
    ns = {"__name__": "gureum_init_user_data"}
    argv = sys.argv
    sys.argv = ["gureum-init", "/nonexistent/user-data", "/nonexistent/work", "/bin/false"]
    try:
        exec(compile(src, str(SCRIPT) + ":python", "exec"), ns)
    finally:
        sys.argv = argv
    ns["log"] = lambda msg: None
    # Coverage for the agent's own functions (they call each other through this namespace).
    for name, value in list(ns.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == ns["__name__"]:
            ns[name] = atheris.instrument_func(value)
    return ns


with atheris.instrument_imports():
    import email
    import email.feedparser
    import gzip  # noqa: F401

AGENT = load_agent()
read_user_data = AGENT["read_user_data"]


def test_one_input(data):
    read_user_data(data)


if __name__ == "__main__":
    # PyYAML is not instrumented: its parser is not under test (what the agent does with what
    # it returns or raises is), and instrumented it is 25 times slower, which turns a
    # legitimately slow document (2 s for 2,000 nested brackets) into a false timeout.
    import yaml  # noqa: F401  (the module load_configs imports)

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
