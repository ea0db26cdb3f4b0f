# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The Docker daemon options of a plugin that runs on the controller (the connection plugin): the options of
    kohakuriver.docker.docker, set through inventory variables and environment variables instead of module options."""

    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - The Docker daemon of the Host that runs the environment containers.
      - A unix socket (V(unix:///var/run/docker.sock)), a TCP address (V(tcp://host:2376), use O(tls) for TLS),
        or an SSH address (V(ssh://root@host)) reached through paramiko; the far side needs the C(docker) CLI
        and the key must be offered by an SSH agent or C(~/.ssh/config).
    type: str
    default: unix:///var/run/docker.sock
    vars:
      - name: kohakuriver_docker_host
    env:
      - name: DOCKER_HOST
  api_version:
    description:
      - The Docker API version to speak. V(auto) asks the daemon.
    type: str
    default: auto
    vars:
      - name: kohakuriver_docker_api_version
    env:
      - name: DOCKER_API_VERSION
  timeout:
    description:
      - Seconds to wait for one answer from the daemon. It does not bound how long a command runs
        (C(apt-get install)), since the daemon answers when the command starts.
    type: int
    default: 60
    vars:
      - name: kohakuriver_docker_timeout
    env:
      - name: DOCKER_TIMEOUT
  tls:
    description:
      - Talk TLS to a V(tcp://) daemon without checking its certificate. Prefer O(validate_certs).
    type: bool
    default: false
    vars:
      - name: kohakuriver_docker_tls
    env:
      - name: DOCKER_TLS
  validate_certs:
    description:
      - Talk TLS to a V(tcp://) daemon and check its certificate against O(ca_path).
    type: bool
    default: false
    vars:
      - name: kohakuriver_docker_validate_certs
    env:
      - name: DOCKER_TLS_VERIFY
  ca_path:
    description:
      - CA certificate that signed the daemon's certificate.
      - If not given, C(ca.pem) in the folder named by E(DOCKER_CERT_PATH) is used when that variable is set.
    type: path
    vars:
      - name: kohakuriver_docker_ca_path
  client_cert:
    description:
      - Client certificate presented to the daemon.
      - If not given, C(cert.pem) in the folder named by E(DOCKER_CERT_PATH) is used when that variable is set.
    type: path
    vars:
      - name: kohakuriver_docker_client_cert
  client_key:
    description:
      - Private key of O(client_cert).
      - If not given, C(key.pem) in the folder named by E(DOCKER_CERT_PATH) is used when that variable is set.
    type: path
    vars:
      - name: kohakuriver_docker_client_key
requirements:
  - Docker SDK for Python >= 7.0 (C(docker)) on the controller.
  - C(paramiko) on the controller when O(docker_host) is an V(ssh://) address.
'''
