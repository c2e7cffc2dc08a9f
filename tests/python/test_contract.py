"""The raw contract's documentation is generated from the code and must stay current."""

from python_jobs import config, contract


def test_raw_contract_doc_is_current():
    doc = (config.ROOT / "docs" / "raw_contract.md").read_text()
    assert doc == contract.markdown(), "run: python -m python_jobs.contract > docs/raw_contract.md"


def test_ddl_covers_every_column():
    for table in contract.TABLES.values():
        ddl = contract.ddl(table)
        for column in [*table.column_names, "_batch_id", "_loaded_at"]:
            assert f"    {column} " in ddl
