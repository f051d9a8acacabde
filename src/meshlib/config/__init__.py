"""Istio configuration: YAML in, validated and frozen spec objects out.

meshlib reads the same VirtualService, DestinationRule, ServiceEntry, WorkloadEntry,
Gateway, Sidecar, PeerAuthentication and AuthorizationPolicy resources Istio reads, and
judges them as Istio does: what Istio accepts loads, what it rejects is rejected with a
:class:`~meshlib.ConfigError` naming the file, document, resource and field path.

>>> from meshlib import config
>>> found = config.read_yaml('''
... apiVersion: networking.istio.io/v1
... kind: VirtualService
... metadata: {name: reviews}
... spec:
...   hosts: [reviews]
...   http:
...   - route:
...     - destination: {host: reviews, subset: v1}
... ''')
>>> found.resources[0].spec.http[0].route[0].destination.subset
'v1'
"""

from meshlib.config import (
    _destination_rule,
    _gateway,
    _security,
    _service_entry,
    _sidecar,
    _virtual_service,
)
from meshlib.config._destination_rule import *  # noqa: F403
from meshlib.config._gateway import *  # noqa: F403
from meshlib.config._load import ConfigSet as ConfigSet
from meshlib.config._load import Skipped as Skipped
from meshlib.config._load import read_paths as read_paths
from meshlib.config._load import read_yaml as read_yaml
from meshlib.config._metadata import ObjectMeta as ObjectMeta
from meshlib.config._problems import Problem as Problem
from meshlib.config._problems import Severity as Severity
from meshlib.config._resource import Origin as Origin
from meshlib.config._resource import Resource as Resource
from meshlib.config._security import *  # noqa: F403
from meshlib.config._selectors import LabelSelector as LabelSelector
from meshlib.config._selectors import PolicyTargetReference as PolicyTargetReference
from meshlib.config._selectors import WorkloadSelector as WorkloadSelector
from meshlib.config._service_entry import *  # noqa: F403
from meshlib.config._sidecar import *  # noqa: F403
from meshlib.config._values import Duration as Duration
from meshlib.config._values import Percent as Percent
from meshlib.config._values import parse_duration as parse_duration
from meshlib.config._virtual_service import *  # noqa: F403

__all__ = sorted(
    [
        "ConfigSet",
        "Duration",
        "LabelSelector",
        "ObjectMeta",
        "Origin",
        "Percent",
        "PolicyTargetReference",
        "Problem",
        "Resource",
        "Severity",
        "Skipped",
        "WorkloadSelector",
        "parse_duration",
        "read_paths",
        "read_yaml",
        *_destination_rule.__all__,
        *_gateway.__all__,
        *_security.__all__,
        *_service_entry.__all__,
        *_sidecar.__all__,
        *_virtual_service.__all__,
    ]
)
