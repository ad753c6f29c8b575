"""``ListLog`` lives on the ground floor, :mod:`mixrank.listlog` (numpy only); this name stays importable."""

from mixrank.listlog import LISTLOG_FORMAT, LISTLOG_VERSION, ListLog

__all__ = ["ListLog", "LISTLOG_FORMAT", "LISTLOG_VERSION"]
