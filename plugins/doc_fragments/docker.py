# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - The Docker daemon to talk to.
      - A unix socket (V(unix:///var/run/docker.sock)), a TCP address (V(tcp://node1:2376), use O(tls) for TLS),
        or an SSH address (V(ssh://root@node1)) reached through paramiko; the far side needs the C(docker) CLI
        and the key must be offered by an SSH agent or C(~/.ssh/config).
      - If not given, the environment variable E(DOCKER_HOST) is used, then the local unix socket.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  api_version:
    description:
      - The Docker API version to speak. V(auto) asks the daemon.
      - If not given, the environment variable E(DOCKER_API_VERSION) is used, then V(auto).
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for one answer from the daemon. Long image saves and loads stream, so this bounds
        the silence between two chunks, not the whole transfer.
      - If not given, the environment variable E(DOCKER_TIMEOUT) is used, then V(60).
    type: int
    default: 60
  tls:
    description:
      - Talk TLS to a V(tcp://) daemon without checking its certificate. Prefer O(validate_certs).
      - If not given, the environment variable E(DOCKER_TLS) is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk TLS to a V(tcp://) daemon and check its certificate against O(ca_path).
      - If not given, the environment variable E(DOCKER_TLS_VERIFY) is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the daemon's certificate.
      - If not given, C(ca.pem) in the folder named by E(DOCKER_CERT_PATH) is used when that variable is set.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description:
      - Client certificate presented to the daemon.
      - If not given, C(cert.pem) in the folder named by E(DOCKER_CERT_PATH) is used when that variable is set.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Private key of O(client_cert).
      - If not given, C(key.pem) in the folder named by E(DOCKER_CERT_PATH) is used when that variable is set.
    type: path
    aliases: [tls_client_key, key_path]
  tls_hostname:
    description:
      - The name the daemon's certificate must carry when O(validate_certs) checks it, when that is not the host name
        of O(docker_host) (for example a daemon reached by its address, C(tcp://10.0.0.5:2376), whose certificate names
        V(node1.cluster)).
      - Only with a V(tcp://) O(docker_host) and O(tls) or O(validate_certs).
      - If not given, the environment variable E(DOCKER_TLS_HOSTNAME) is used, then the host name of O(docker_host).
    type: str
  use_ssh_client:
    description:
      - For an V(ssh://) O(docker_host), run the system's C(ssh) binary instead of paramiko, so that everything
        C(~/.ssh/config) says applies - C(ProxyJump) through a bastion, C(ProxyCommand), host aliases, C(ControlMaster).
      - The C(ssh) on the C(PATH) of the host that runs the module must log in without a prompt (keys, an agent),
        and know the daemon's host key. paramiko is still needed for the SSH transport of the Docker SDK.
      - Give the port in O(docker_host) (V(ssh://node1:22)) when C(~/.ssh/config) sets another C(Port) for the host -
        the Docker SDK runs C(ssh -p 22) when the address has none, which overrides the configuration's port.
    type: bool
    default: false
  debug:
    description:
      - Return the Docker API requests the module made, in RV(ignore:docker_requests) - one C(METHOD /path status) line
        each, without query strings, headers or bodies (so no credentials), whether the task succeeds or fails.
      - Requests made while connecting (the API version check) are not listed.
    type: bool
    default: false
notes:
  - Connection options can be set once for every module of this collection with
    C(module_defaults) and the action group C(group/kohakuriver.docker.docker).
  - A TLS connection trusts only O(ca_path) (or E(DOCKER_CERT_PATH)) and O(validate_certs); the environment's
    E(REQUESTS_CA_BUNDLE), E(CURL_CA_BUNDLE) and proxy variables do not apply to it.
requirements:
  - Docker SDK for Python >= 7.0 (C(docker)) on the host that runs the module.
  - C(paramiko) on that host when O(docker_host) is an V(ssh://) address.
'''
