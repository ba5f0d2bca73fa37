"""The field types the API's request bodies share (ids, names, addresses, ports), in one place
that imports no route module: a body of one object can nest another's (the fully populated
load balancer create nests listeners, pools, members and monitors)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, StrictInt

Id = Annotated[str, Field(min_length=1, max_length=36)]
Name = Annotated[str, Field(max_length=255)]
Tag = Annotated[str, Field(min_length=1, max_length=255)]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
