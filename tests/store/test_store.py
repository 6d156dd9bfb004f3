from distillwatch import store


def test_connect_creates_file_and_is_idempotent(tmp_path):
    db = tmp_path / "sub" / "dw.duckdb"
    with store.open_store(db) as con:
        assert con.execute("SELECT value FROM store_meta WHERE key = 'created_by'").fetchone() == ("distillwatch",)
    assert db.exists()
    # reopening applies the schema again without error or duplicate rows
    with store.open_store(db) as con:
        assert con.execute("SELECT count(*) FROM store_meta").fetchone() == (1,)


def test_default_path_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(store.DB_ENV, str(tmp_path / "x.duckdb"))
    assert store.default_db_path() == tmp_path / "x.duckdb"
