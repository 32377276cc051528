"""The small error tree that every edge (CLI, UI, runner) maps in one place."""

from __future__ import annotations


class RunlabError(Exception):
    """Base of every error Runlab raises on purpose; anything else is a bug."""

    exit_code = 1


class InvalidParams(RunlabError):
    """Bad input, rejected before anything is stored.

    `errors` maps a field name to its message, so that a form can show each one at its field.
    """

    exit_code = 2

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.errors.items()))


class UnknownKind(InvalidParams):
    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__({"kind": f"unknown kind {kind!r}; known kinds: {', '.join(known)}"})


class JobNotFound(RunlabError):
    exit_code = 1

    def __init__(self, job_id: str, what: str = "job") -> None:
        self.job_id = job_id
        super().__init__(f"no such {what}: {job_id}")


class PipelineNotFound(JobNotFound):
    def __init__(self, public_id: str) -> None:
        super().__init__(public_id, "pipeline")


class PipelineUnreadable(RunlabError):
    """A pipeline whose stored steps this version cannot read (a status it does not know):
    said plainly, where the runners leave it alone and `runlab doctor` names it."""

    exit_code = 1

    def __init__(self, public_id: str, why: str) -> None:
        self.public_id = public_id
        super().__init__(f"pipeline {public_id} cannot be read: {why}; `runlab doctor` names it")


class SweepNotFound(JobNotFound):
    def __init__(self, sweep_id: str) -> None:
        super().__init__(sweep_id, "sweep")


class ArtifactsUnreachable(RunlabError):
    """The artifact store that the settings name does not answer, or has no such bucket: a
    setting to fix before a runner or a web app starts."""


class CodeMismatch(RunlabError):
    """The Dask cluster could not run a job's tasks for code it lacks: a module to install on
    the scheduler and every worker, not a fault that trying again mends."""


class StoreBusy(RunlabError):
    """Another process held SQLite's write lock for longer than a writer waits: nothing of
    the write was kept, and trying again later is all there is to do."""

    def __init__(self, waited: float) -> None:
        super().__init__(
            f"the store is busy: another process has held its write lock for {waited:g} s; "
            "nothing was changed, try again"
        )


class LostJob(RunlabError):
    """A fenced write matched no row: the job was cancelled or reclaimed, so this attempt stops."""

    def __init__(self, job_id: int, attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        super().__init__(f"job {job_id} attempt {attempt} no longer owns the job")


class JobCancelled(RunlabError):
    """Raised inside a driver by `check_cancelled()` once a cancel was requested."""


class Retryable(RunlabError):
    """Raised by a driver for a failure worth another attempt (a flaky source, a lost worker).

    The job goes back to the queue with backoff until `max_attempts` is used up.
    """


class ClusterLost(Retryable):
    """The runner lost its Dask scheduler mid-job: the attempt ends, and the next one runs on a
    fresh client."""


class NoWorkers(RunlabError):
    """The runner's Dask cluster has had no worker for longer than it waits: the attempt is
    handed back, uncharged, for a runner whose cluster can run it."""


class JobTimedOut(RunlabError):
    """Raised inside a driver by `check_cancelled()` once the job has run past its timeout."""


class BadResult(RunlabError):
    """A driver returned something that cannot be stored as a result."""


class InvalidUpload(InvalidParams):
    """An uploaded file that cannot be used; the message goes under the upload's field."""

    def __init__(self, message: str, field: str = "data") -> None:
        super().__init__({field: message})


class UploadMissing(RunlabError):
    """A job's uploaded file is gone from the artifact store, or no longer matches its SHA-256:
    the job fails with this message rather than retrying."""


class Forbidden(RunlabError):
    """The person asking may not do this to this job: only its owner or an admin may. Nothing
    was changed."""

    exit_code = 3

    def __init__(self, job_id: str, owner: str, what: str, *, of: str = "job") -> None:
        self.job_id = job_id
        self.owner = owner
        super().__init__(
            f"only the owner of {of} {job_id} ({owner or 'no one'}) or an admin may {what}"
        )
