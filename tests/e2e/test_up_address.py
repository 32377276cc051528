"""`runlab up` serves the app on this machine only, at the address it announces."""

from __future__ import annotations

from urllib.parse import urlsplit

import psutil
import pytest

from tests.e2e.conftest import RunlabUp
from tests.polling import wait_for

pytestmark = pytest.mark.e2e


def test_runlab_up_listens_on_127_0_0_1_and_announces_a_url_that_answers(
    runlab_app: RunlabUp,
) -> None:
    port = urlsplit(runlab_app.url).port
    listening = {
        c.laddr.ip
        for p in [psutil.Process(runlab_app.proc.pid), *runlab_app.descendants()]
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert listening == {"127.0.0.1"}
    announced = f"Runlab is up: open http://localhost:{port} "
    wait_for(lambda: announced in runlab_app.log(), timeout=10, what="the announcement")
    assert runlab_app.healthy()  # what the announced address answers
    assert "no sign-in" not in runlab_app.log()
