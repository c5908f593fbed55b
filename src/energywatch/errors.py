"""One error hierarchy: transient failures are retried, terminal ones need a person."""

from __future__ import annotations


class EnergywatchError(Exception):
    """Base of every error energywatch raises on purpose."""

    # the summary of the run this error ended, when it ended one (see pipeline.run_async)
    summary: object | None = None


class TransientError(EnergywatchError):
    """A failure that may pass by itself (timeout, 429, 5xx, connection reset): retry later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TerminalError(EnergywatchError):
    """A failure that retrying will not fix (bad feed, bad config, refused address)."""


class ConfigError(TerminalError):
    """Settings, the feed list or a rules file is invalid."""


class FetchError(TerminalError):
    """A URL answered in a way we cannot use (404, wrong content type, too large, gone)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FeedGone(FetchError):
    """The feed answered 410 Gone: it is disabled until someone re-enables it."""


class BlockedAddressError(FetchError):
    """The URL resolves to a private, loopback or link-local address and configuration forbids it."""


class FeedParseError(TerminalError):
    """The body is not a feed we can read, and no feed link was found in it."""


class StoreError(EnergywatchError):
    """The storage backend failed or refused a request."""


class StoreUnavailable(StoreError, TransientError):
    """The storage backend could not be reached; the work can be retried."""
