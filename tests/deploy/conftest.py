"""The deployment tests need root and `ip`: under CI=true they must run, and fail where they
cannot; elsewhere they skip with a one-line reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.deploy.deployment import Deployment
from tests.deploy.hosts import Network, leftovers, why_not_here


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The whole topology, built once for the module's scenarios, which run in order."""
    reason = why_not_here()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the deployment tests cannot run here: {reason}")
        pytest.skip(f"the deployment tests {reason}")
    folder = tmp_path_factory.mktemp("deploy")
    net = Network(folder)
    deployed: Deployment | None = None
    with net:
        deployed = Deployment(net, folder)
        try:
            deployed.start()
            yield deployed
        finally:
            deployed.close()
    assert leftovers(net.tag) == [], "the test's namespaces and links outlived it"
