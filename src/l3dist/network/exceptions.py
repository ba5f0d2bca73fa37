"""The network driver exceptions, named as in the spec."""

from __future__ import annotations


class NetworkException(Exception):
    """Base of every network driver error."""


class PlugVIPException(NetworkException):
    pass


class UnplugVIPException(NetworkException):
    pass


class PluggedVIPNotFound(NetworkException):
    pass


class AllocateVIPException(NetworkException):
    pass


class DeallocateVIPException(NetworkException):
    pass


class PlugNetworkException(NetworkException):
    pass


class UnplugNetworkException(NetworkException):
    pass


class VIPInUse(NetworkException):
    pass


class PortNotFound(NetworkException):
    pass


class SubnetNotFound(NetworkException):
    pass


class NetworkNotFound(NetworkException):
    pass


class VIPConfigurationNotFound(NetworkException):
    pass


class AmphoraNotFound(NetworkException):
    pass
