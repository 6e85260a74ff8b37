"""inboxd: an email-first shared-inbox helpdesk daemon."""

__version__ = "0.1.0"


def installed_version() -> str:
    """The version pip installed (what ``inboxd status`` reports), else the source's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("inboxd")
    except PackageNotFoundError:
        return __version__
