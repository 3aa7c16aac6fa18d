"""``redact``: the one way a store URL is shown in messages, logs and pages."""

from __future__ import annotations

import pytest

from trellis_actors.stores import redact


class TestRedact:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            ("postgresql://app:s3cret@db:5432/trellis", "postgresql://app:***@db:5432/trellis"),
            ("postgresql://app:p@ss:w@db/trellis", "postgresql://app:***@db/trellis"),
            (
                "postgresql://app:s3cret@db/trellis?application_name=a@b",
                "postgresql://app:***@db/trellis?application_name=a@b",
            ),
        ],
    )
    def test_hides_the_password(self, url: str, shown: str) -> None:
        """The password becomes ***; user, host, path and query stay as they were."""
        assert redact(url) == shown

    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://app@db/trellis",
            "postgresql://db/trellis?user=a:b@c",
            "sqlite:///data/trellis.db",
            "memory://",
            "not a url",
        ],
    )
    def test_leaves_urls_without_a_password(self, url: str) -> None:
        """A URL without a password comes back unchanged."""
        assert redact(url) == url
