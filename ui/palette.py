"""Each status's colour, as hex for charts and tables; `ui.badges` names the same hues for
Streamlit's badges. One palette, so a failed job is the same red on every page and chart,
and each hue reads on the light and the dark theme alike."""

from __future__ import annotations

from jobstore.models import Status
from runlab.status import PARTIAL

STATUS_HEX: dict[str, str] = {
    Status.QUEUED: "#8B95A5",  # gray
    Status.RUNNING: "#3B82F6",  # blue
    Status.SUCCEEDED: "#2E9E5B",  # green
    Status.FAILED: "#D64545",  # red
    Status.CANCELLED: "#E08A1E",  # orange
    PARTIAL: "#8B5CF6",  # violet: succeeded, with part of its result (a stop and keep)
}
# States of attempts and stages, drawn in the hue of the status they lead to.
STATE_HEX: dict[str, str] = {
    **STATUS_HEX,
    "pending": STATUS_HEX[Status.QUEUED],
    "done": STATUS_HEX[Status.SUCCEEDED],
    "requeued": "#C9A227",  # yellow: back in the queue after a lost lease
}
OTHER_HEX = "#9467BD"
