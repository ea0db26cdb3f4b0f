# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: environments
short_description: The environment containers of one or more Hosts, as inventory hosts
version_added: 0.2.0
description:
  - Lists the environment containers (C(kohakuriver-env-<env>)) of one or more Docker daemons, running and stopped, as
    inventory hosts named after their environment, reached through the P(kohakuriver.docker.env#connection)
    connection plugin.
  - Only containers this collection made are listed (label C(io.kohakuriver.docker.managed=true) and a matching
    C(io.kohakuriver.docker.env) label); containers made by hand or by KohakuRiver, with or without the name, never are.
  - Every host is in the group C(kohakuriver_environments), and in C(kohakuriver_environments_running) or
    C(kohakuriver_environments_stopped) (any state but running, paused included).
  - "Host variables: C(ansible_connection=kohakuriver.docker.env), C(ansible_host=<env>),
    C(ansible_python_interpreter=auto_silent) (the container's own Python, whatever a group says), the connection variables
    C(kohakuriver_docker_host), C(kohakuriver_docker_api_version), C(kohakuriver_docker_timeout), C(kohakuriver_docker_tls),
    C(kohakuriver_docker_validate_certs) and, when set, C(kohakuriver_docker_ca_path), C(kohakuriver_docker_client_cert),
    C(kohakuriver_docker_client_key); and C(kohakuriver_env) (the environment), C(kohakuriver_env_host) (the Host's
    O(hosts[].name)), C(kohakuriver_env_container), C(kohakuriver_env_container_id), C(kohakuriver_env_image) (the image
    the container was made from), C(kohakuriver_env_image_id), C(kohakuriver_env_status) (Docker's state: C(running),
    C(exited), C(created), C(paused), ...), C(kohakuriver_env_running), C(kohakuriver_env_created) and C(kohakuriver_env_labels)."
  - The configuration file's name ends with C(kohakuriver_environments.yml) or C(kohakuriver_environments.yaml).
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
requirements:
  - Docker SDK for Python >= 7.0 (C(docker)) on the controller, and C(paramiko) for V(ssh://) daemons.
options:
  plugin:
    description: The name of this plugin; the file is read by it only with this value.
    type: str
    required: true
    choices: [kohakuriver.docker.environments]
  hosts:
    description:
      - The Hosts whose environments to list, each with the connection options of its daemon (as the modules take them).
        Without it, the local daemon (V(unix:///var/run/docker.sock)).
      - Every Host is asked; one that does not answer fails the inventory source with a message naming it.
    type: list
    elements: dict
    default: [{docker_host: unix:///var/run/docker.sock}]
    suboptions:
      name:
        description: The Host's name, in C(kohakuriver_env_host). Defaults to O(hosts[].docker_host).
        type: str
      docker_host:
        description: The Host's Docker daemon, a V(unix://), V(tcp://) or V(ssh://) address.
        type: str
        default: unix:///var/run/docker.sock
      api_version:
        description: The Docker API version to speak; V(auto) asks the daemon.
        type: str
        default: auto
      timeout:
        description: Seconds to wait for one answer from the daemon.
        type: int
        default: 60
      tls:
        description: Talk TLS to a V(tcp://) daemon without checking its certificate.
        type: bool
        default: false
      validate_certs:
        description: Talk TLS to a V(tcp://) daemon and check its certificate against O(hosts[].ca_path).
        type: bool
        default: false
      ca_path:
        description: CA certificate that signed the daemon's certificate.
        type: path
      client_cert:
        description: Client certificate presented to the daemon.
        type: path
      client_key:
        description: Private key of O(hosts[].client_cert).
        type: path
      prefix:
        description:
          - Put before each environment's name to make its inventory host name, for example V(gpu1-). Environments
            of the same name on two Hosts need a prefix on one of them; without one the inventory source fails.
        type: str
        default: ''
  filters:
    description:
      - Include or exclude hosts, as community.docker's inventory plugins do. The first entry whose condition is true
        decides; a host no entry decides is included.
      - The conditions see the host variables above (before O(compose)).
    type: list
    elements: dict
    default: []
    suboptions:
      include:
        description: A Jinja2 condition; a host for which it is true is included. Exactly one of O(filters[].include) and O(filters[].exclude).
        type: str
      exclude:
        description: A Jinja2 condition; a host for which it is true is excluded.
        type: str
'''

EXAMPLES = r'''
# inventory/kohakuriver_environments.yml
plugin: kohakuriver.docker.environments
hosts:
  - name: host
    docker_host: unix:///var/run/docker.sock
  - name: gpu-host
    docker_host: tcp://gpu-host:2376
    validate_certs: true
    ca_path: /etc/docker/certs/ca.pem
    prefix: gpu-
filters:
  - exclude: "kohakuriver_env is match('scratch-')"
keyed_groups:
  - key: kohakuriver_env_host
    prefix: kohakuriver_host
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"

# Then: ansible-playbook -i inventory/kohakuriver_environments.yml customise.yml
# with `hosts: kohakuriver_environments_running` in the play.
'''

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    DEFAULT_DOCKER_HOST, DEFAULT_TIMEOUT, LABEL_ENV, LABEL_MANAGED, env_of_container,
)

GROUP_ALL = 'kohakuriver_environments'
GROUP_RUNNING = 'kohakuriver_environments_running'
GROUP_STOPPED = 'kohakuriver_environments_stopped'
CONNECTION = 'kohakuriver.docker.env'
_CONNECTION_OPTIONS = ('docker_host', 'api_version', 'timeout', 'tls', 'validate_certs', 'ca_path', 'client_cert', 'client_key')
_HOST_KEYS = frozenset(_CONNECTION_OPTIONS + ('name', 'prefix'))
_ENTRY_DEFAULTS = dict(docker_host=DEFAULT_DOCKER_HOST, api_version='auto', timeout=DEFAULT_TIMEOUT, tls=False,
                       validate_certs=False, ca_path=None, client_cert=None, client_key=None, prefix='')


def settle_hosts(entries):
    """The hosts option, each entry complete and checked; a Failure naming the entry and what to fix otherwise."""
    if not isinstance(entries, list) or not entries:
        raise Failure('hosts must be a non-empty list of Hosts, each a dict with at least docker_host.')
    settled, names = [], set()
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise Failure('hosts[%d] must be a dict with docker_host and the other connection options, not %r.' % (number, entry))
        unknown = sorted(set(entry) - _HOST_KEYS)
        if unknown:
            raise Failure('hosts[%d] has unknown option(s) %s: use %s.' % (number, ', '.join(unknown), ', '.join(sorted(_HOST_KEYS))))
        host = dict(_ENTRY_DEFAULTS)
        host.update((key, value) for key, value in entry.items() if value is not None)
        host['name'] = str(entry.get('name') or host['docker_host'])
        if not isinstance(host['docker_host'], str) or not host['docker_host'].startswith(('unix://', 'tcp://', 'ssh://')):
            raise Failure('hosts[%d].docker_host %r is not a unix://, tcp:// or ssh:// address.' % (number, host['docker_host']))
        try:
            host['timeout'] = int(host['timeout'])
        except (TypeError, ValueError):
            raise Failure('hosts[%d].timeout %r is not a number of seconds.' % (number, host['timeout']))
        for flag in ('tls', 'validate_certs'):
            if not isinstance(host[flag], bool):
                raise Failure('hosts[%d].%s must be true or false, not %r.' % (number, flag, host[flag]))
        if host['name'] in names:
            raise Failure('hosts[%d]: Host %s is listed twice: give each Host one entry.' % (number, host['name']))
        names.add(host['name'])
        settled.append(host)
    return settled


def settle_filters(filters):
    """The filters option as (include: bool, condition) pairs."""
    settled = []
    for number, entry in enumerate(filters or [], 1):
        if not isinstance(entry, dict) or len(entry) != 1 or set(entry) - {'include', 'exclude'}:
            raise Failure('filters[%d] must be a dict with exactly one of include and exclude, not %r.' % (number, entry))
        (kind, condition), = entry.items()
        if not isinstance(condition, str) or not condition.strip():
            raise Failure('filters[%d].%s must be a Jinja2 condition (a string).' % (number, kind))
        settled.append((kind == 'include', condition))
    return settled


def environment_of(inspected):
    """The environment an inspected container is the container of, or None when it is not one of ours."""
    name = (inspected.get('Name') or '').lstrip('/')
    env = env_of_container(name)
    labels = (inspected.get('Config') or {}).get('Labels') or {}
    if env is None or labels.get(LABEL_MANAGED) != 'true' or labels.get(LABEL_ENV) != env:
        return None
    return env


def environment_record(host, inspected):
    """What the inventory keeps of one environment container (JSON: it is also what the cache holds)."""
    state = inspected.get('State') or {}
    config = inspected.get('Config') or {}
    status = state.get('Status') or ('running' if state.get('Running') else 'exited')
    return dict(env=environment_of(inspected), host=host['name'], container=inspected['Name'].lstrip('/'),
                container_id=inspected.get('Id', ''), image=config.get('Image', ''), image_id=inspected.get('Image', ''),
                status=status, created=inspected.get('Created', ''), labels=dict(config.get('Labels') or {}))


def host_variables(host, record):
    """The inventory variables of one environment: what it is, and how the connection plugin reaches it."""
    variables = {
        'ansible_connection': CONNECTION,
        'ansible_host': record['env'],
        'ansible_python_interpreter': 'auto_silent',  # found inside the container, never a group's controller path
        'kohakuriver_docker_host': host['docker_host'],
        'kohakuriver_docker_api_version': host['api_version'],
        'kohakuriver_docker_timeout': host['timeout'],
        'kohakuriver_docker_tls': host['tls'],
        'kohakuriver_docker_validate_certs': host['validate_certs'],
    }
    for option in ('ca_path', 'client_cert', 'client_key'):
        if host[option]:
            variables['kohakuriver_docker_' + option] = host[option]
    variables.update({
        'kohakuriver_env': record['env'],
        'kohakuriver_env_host': record['host'],
        'kohakuriver_env_container': record['container'],
        'kohakuriver_env_container_id': record['container_id'],
        'kohakuriver_env_image': record['image'],
        'kohakuriver_env_image_id': record['image_id'],
        'kohakuriver_env_status': record['status'],
        'kohakuriver_env_running': record['status'] == 'running',
        'kohakuriver_env_created': record['created'],
        'kohakuriver_env_labels': record['labels'],
    })
    return variables


def list_environments(host):
    """The records of every environment container on one Host, sorted by environment; Failure when it does not answer."""
    from ansible_collections.kohakuriver.docker.plugins.module_utils import client as docker_client
    if docker_client.DOCKER_SDK_IMPORT_ERROR:
        raise Failure('The kohakuriver.docker.environments inventory needs the Docker SDK for Python (pip install docker) on the controller.')
    settings = dict((option, host[option]) for option in _CONNECTION_OPTIONS)
    try:
        api = docker_client.connect(**settings)
    except Failure as failure:
        raise Failure('Host %s: %s' % (host['name'], failure.msg))
    records = []
    try:
        listed = api.api.containers(all=True, filters={'label': ['%s=true' % LABEL_MANAGED]})
        for entry in listed:
            inspected = docker_client.inspect_container(api, entry['Id'])
            if inspected is not None and environment_of(inspected):
                records.append(environment_record(host, inspected))
    except docker_client.DOCKER_ERRORS as exc:
        raise Failure('Host %s: listing its environment containers failed: %s' % (host['name'], docker_client.explain(exc)))
    finally:
        api.close()
    return sorted(records, key=lambda record: record['env'])


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'kohakuriver.docker.environments'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(
            ('kohakuriver_environments.yml', 'kohakuriver_environments.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            hosts = settle_hosts(self.get_option('hosts'))
            filters = settle_filters(self.get_option('filters'))
        except Failure as failure:
            raise AnsibleParserError('%s: %s' % (path, failure.msg))
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache') and not cache
        found = None
        if use_cache:
            try:
                found = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if found is None:
            try:
                found = dict((host['name'], list_environments(host)) for host in hosts)
            except Failure as failure:
                raise AnsibleParserError('%s: %s' % (path, failure.msg))
        if update_cache:
            self._cache[cache_key] = found
        self._populate(hosts, filters, found)

    def _populate(self, hosts, filters, found):
        strict = self.get_option('strict')
        seen = {}
        for host in hosts:
            for record in found.get(host['name'], []):
                name = host['prefix'] + record['env']
                if name in seen:
                    raise AnsibleParserError('Environment %s is on Host %s and on Host %s: give one of them a prefix in hosts.'
                                             % (record['env'], seen[name], host['name']))
                seen[name] = host['name']
                variables = host_variables(host, record)
                if not self._included(filters, variables):
                    continue
                self._add(name, variables, strict)

    def _included(self, filters, variables):
        self.templar.available_variables = variables
        for include, condition in filters:
            try:
                matched = self.templar.evaluate_conditional(condition)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                raise AnsibleParserError('filter %r cannot be evaluated: %s' % (condition, exc))
            if matched:
                return include
        return True

    def _add(self, name, variables, strict):
        self.inventory.add_host(name)
        for group in (GROUP_ALL, GROUP_RUNNING if variables['kohakuriver_env_running'] else GROUP_STOPPED):
            self.inventory.add_group(group)
            self.inventory.add_child(group, name)
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)
        self._set_composite_vars(self.get_option('compose'), variables, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option('groups'), variables, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), variables, name, strict=strict)
