"""The public API is curated: adding or removing a name is a deliberate change (httpx style)."""

from types import ModuleType

import grounded


def test_all_public_names_are_exported():
    """httpx's test: `__all__` is exactly the module's public names, sorted case-insensitively."""
    for name in grounded.__all__:
        getattr(grounded, name)  # the lazy ones land in the namespace on first use
    public = [
        name
        for name, value in vars(grounded).items()
        if (not name.startswith("_") or name == "__version__")
        # grounded's own submodules (grounded.index, ...) are namespaces, not exported members
        and not (isinstance(value, ModuleType) and value.__name__.startswith("grounded."))
    ]
    assert grounded.__all__ == sorted(public, key=str.casefold)


def test_exported_members():
    exported = set(grounded.__all__)
    expected = {
        "Block",
        "CheckError",
        "CheckOptions",
        "CheckSpec",
        "ExecutorOptions",
        "GenerateOptions",
        "IngestOptions",
        "ModelOptions",
        "RunOptions",
        "register_check",
        "register_embedder",
        "register_exporter",
        "register_transport",
        "Chunk",
        "ClaimVerdict",
        "ConfigError",
        "Document",
        "Evidence",
        "GroundedError",
        "Hit",
        "IndexStoreError",
        "LLMError",
        "LoaderError",
        "MissingDependencyError",
        "PromptError",
        "Provenance",
        "QAPair",
        "Reason",
        "Rejection",
        "Verdict",
        "__version__",
        "check",
        "check_long",
        "chunk_document",
        "default_checker",
        "from_langchain",
        "generate",
        "ingest",
        "load",
        "open_index",
        "register_loader",
        "run",
        "search",
        "to_langchain",
    }
    assert exported == expected


def test_every_exported_name_resolves():
    for name in grounded.__all__:
        assert getattr(grounded, name) is not None, name


def test_errors_share_one_base():
    for name in grounded.__all__:
        obj = getattr(grounded, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, grounded.GroundedError), name


def test_qapair_round_trips_through_dict():
    ev = grounded.Evidence(doc_id="d", chunk_id="d:0-5", start=0, end=5, text="Hello", score=1.0)
    verdict = grounded.Verdict(supported=True, score=0.9, reasons=(grounded.Reason("ok", "fine"),))
    pair = grounded.QAPair(
        id="x",
        question="Who?",
        answer="Hello",
        evidence=(ev,),
        doc_ids=("d",),
        chunk_ids=("d:0-5",),
        provenance=grounded.Provenance(model="m", prompt="p"),
        verdict=verdict,
    )
    assert grounded.QAPair.from_dict(pair.to_dict()) == pair


def test_no_module_shares_a_public_function_name():
    import pkgutil

    import grounded.checker  # noqa: F401 - importing every stage module must not shadow a function
    import grounded.generation  # noqa: F401
    import grounded.ingestion  # noqa: F401
    from grounded.checker import check
    from grounded.generation import generate
    from grounded.ingestion import ingest

    assert grounded.ingest is ingest and grounded.generate is generate and grounded.check is check
    modules = {m.name for m in pkgutil.iter_modules(grounded.__path__)}
    functions = {
        n
        for n in grounded.__all__
        if callable(getattr(grounded, n)) and not isinstance(getattr(grounded, n), type)
    }
    assert not modules & functions, (
        f"modules named like public functions: {sorted(modules & functions)}"
    )
