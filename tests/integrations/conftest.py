import os

# LiteLLM fetches a model price list from the network on import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import pytest

from distillwatch.respond import records  # noqa: E402
from distillwatch.respond.decide import decide  # noqa: E402
from distillwatch.respond.policy import load_policy  # noqa: E402
from distillwatch.respond.results import read_results  # noqa: E402
from distillwatch.respond.service import create_app  # noqa: E402
from tests.respond.helpers import BASE_ACCOUNTS, BASE_ROWS, NOW, write_accounts, write_results  # noqa: E402
from tests.respond.server import running  # noqa: E402

TOKEN = "integration-token-0123456789"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A decided store (atk-* blocked, sus-1 throttled, clean-2 degraded by an analyst) and a real server."""
    tmp = tmp_path_factory.mktemp("svc")
    results = write_results(tmp / "r", BASE_ROWS)
    accounts = write_accounts(tmp / "accounts.parquet", BASE_ACCOUNTS)
    db = tmp / "store.duckdb"
    decide(read_results(results), load_policy(), db, accounts_path=accounts, now=NOW)
    records.add_override(db, "clean-2", "set", "tester", "degrade for the test", action="degrade")
    app = create_app(db, load_policy(), [TOKEN], poll_interval_s=0.05, freeze_gc=False)
    with running(app) as url:
        assert httpx.get(url + "/healthz").json()["decision_run_id"]
        yield url, db
