def test_store_is_reachable(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select 1").scalar() == 1
