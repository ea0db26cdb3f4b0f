# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `registry` option (doc fragment kohakuriver.docker.registry): its argument spec and its validation.

Standard library only, so that every Request can validate it before any Docker or registry call.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import REGISTRY_NAMESPACE, registry_repository

REGISTRY_OPTIONS = dict(
    url=dict(type='str', required=True),
    namespace=dict(type='str', default=REGISTRY_NAMESPACE),
    username=dict(type='str'),
    password=dict(type='str', no_log=True),
    ca_path=dict(type='path'),
    insecure=dict(type='bool', default=False),
)
REGISTRY_ARGUMENT_SPEC = dict(registry=dict(type='dict', options=REGISTRY_OPTIONS))

_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_REPOSITORY = re.compile(r'%s(?:/%s)*' % (_COMPONENT, _COMPONENT))
_URL = re.compile(r'(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?')


def is_loopback(host):
    """localhost, 127.0.0.0/8 or ::1: registries every dockerd reaches over plain HTTP without configuration."""
    host = host.strip('[]')
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_url(url, option='registry.url'):
    """host[:port] without scheme or path; returns (url, host)."""
    match = _URL.fullmatch(url) if isinstance(url, str) else None
    if not match or (match.group('port') and not 0 < int(match.group('port')) < 65536):
        raise Failure('%s %r is not valid: give host[:port] without a scheme or path, like registry.example.org:5000.'
                      % (option, url))
    return url, match.group('host')


def validate_repository(repository, option='registry.namespace'):
    if not isinstance(repository, str) or len(repository) > 255 or not _REPOSITORY.fullmatch(repository):
        raise Failure('%s %r is not valid: use lowercase path components (letters, digits, ".", "_", "-") separated'
                      ' by "/".' % (option, repository))
    return repository


def optional_text(option, key):
    """A string value of the registry dict, or None when it is unset or empty."""
    value = option.get(key)
    if value is not None and not isinstance(value, str):
        raise Failure('registry.%s must be a string, not %s.' % (key, type(value).__name__))
    return value or None


class RegistrySettings(object):
    """The validated `registry` option: url, namespace, username, password, ca_path, insecure."""

    def __init__(self, option):
        if not isinstance(option, dict):
            raise Failure('registry must be a dict with at least url.')
        unknown = sorted(set(option) - set(REGISTRY_OPTIONS))
        if unknown:
            raise Failure('registry has unknown keys %s: use %s.' % (', '.join(unknown), ', '.join(REGISTRY_OPTIONS)))
        self.url = validate_url(option.get('url'))[0]
        self.namespace = validate_repository(option.get('namespace') or REGISTRY_NAMESPACE)
        self.username = optional_text(option, 'username')
        self.password = optional_text(option, 'password')
        if bool(self.username) != bool(self.password):
            raise Failure('registry: give both username and password, or neither.')
        self.ca_path = optional_text(option, 'ca_path')
        if self.ca_path is not None and not os.path.isfile(self.ca_path):
            raise Failure('registry.ca_path %s does not exist or is not a file.' % self.ca_path)
        self.insecure = option.get('insecure') in (True, 'true', 'yes', 1)
        self.loopback = is_loopback(validate_url(self.url)[1])

    @classmethod
    def from_option(cls, option):
        """None for an absent option (no registry), else the validated settings."""
        return None if option is None else cls(option)

    def repository(self, env):
        """<url>/<namespace>/<env>: the name the daemon pushes and pulls."""
        return registry_repository(self.url, self.namespace, env)

    def path(self, env):
        """<namespace>/<env>: the repository as the registry API names it (without the url)."""
        return '%s/%s' % (self.namespace, env)
