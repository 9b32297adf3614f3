"""kubectl_input: what kubedrill pipes to `kubectl apply -f -` keeps every string a string.

The case behind it: a cluster-etcd soak run had all 6 restore tests error at setup with "json:
cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string". The drill's
random six-hex tag happened to read as a number in exponent form (like "12e456"): PyYAML wrote it
unquoted, being a string to PyYAML, and kubectl's YAML reader took it for a float.
"""

from __future__ import annotations

import json

import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubedrill.workload.apply import kubectl_input

NUMBER_LOOKING = ["12e456", "1e3", "0x1F", "1_000", "0o17", ".5", "+1", "1:20", "yes", "off", "~", "null", "0777"]


def test_strings_that_read_as_numbers_elsewhere_are_quoted() -> None:
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "labels": {"t": v}}}
            for i, v in enumerate(NUMBER_LOOKING)]
    text = kubectl_input(docs)
    for v in NUMBER_LOOKING:
        assert f'"t": "{v}"' in text, f"{v!r} is not written as a quoted string:\n{text}"
    # PyYAML writes at least one of them bare: the reason for not sending YAML.
    assert "t: 12e456" in yaml.safe_dump({"t": "12e456"})


# Printable text: control and format characters never reach here (the strict manifest reader refuses them).
TEXT = st.characters(blacklist_categories=("Cc", "Cs", "Cf"))


@given(st.lists(st.dictionaries(st.text(TEXT, min_size=1, max_size=8), st.one_of(st.text(TEXT, max_size=12), st.integers(),
                                                                          st.booleans(), st.none())),
                min_size=1, max_size=4))
def test_each_document_reads_back_as_sent(docs: list[dict]) -> None:
    parts = kubectl_input(docs).split("\n---\n")
    assert [json.loads(p) for p in parts] == docs
    assert list(yaml.safe_load_all(kubectl_input(docs))) == docs  # and it is a valid YAML stream
