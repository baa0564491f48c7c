"""The versions document clients discover the API with."""

from __future__ import annotations

from usermessages.web.microversion import MAX_VERSION, MIN_VERSION, UPDATED


def version_document(base: str) -> dict:
    """``{"versions": [v3.0]}``, in Cinder's key order; ``base`` has no trailing slash."""
    return {
        "versions": [
            {
                "id": "v3.0",
                "status": "CURRENT",
                "version": str(MAX_VERSION),
                "min_version": str(MIN_VERSION),
                "updated": UPDATED,
                "links": [
                    {"rel": "describedby", "type": "text/html",
                     "href": "https://docs.openstack.org/"},
                    {"rel": "self", "href": f"{base}/v3/"},
                ],
                "media-types": [
                    {"base": "application/json",
                     "type": "application/vnd.openstack.volume+json;version=3"},
                ],
            }
        ]
    }
