# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The connection options shared by every dxflow.remote module and plugin (DESIGN section 2)."""

    DOCUMENTATION = r"""
options:
  profile:
    description:
      - Name of the dxflow profile (C(<DXFLOW_HOME>/<profile>_config.yaml)) to read the connection settings from.
      - When not set, the profile is the one whose address matches O(connection_address), else E(DXFLOW_PROFILE),
        else the active profile (C(<DXFLOW_HOME>/active_profile)), else C(default).
      - A profile named here must exist; the error lists the known profiles.
    type: str
  connection_address:
    description:
      - URL of the engine or director, for example C(https://host:8080).
      - When a stored profile has the same address (a trailing C(/) is ignored), that profile's key, token and mTLS
        bundle are reused.
      - Falls back to E(CONNECTION_ADDRESS), then to the profile's C(connection-address).
    type: str
  connection_key:
    description:
      - Path of the RSA private key (PEM, mode 0600) used for the engine's challenge-response login.
      - Falls back to E(CONNECTION_KEY), then to the profile's C(connection-key).
    type: path
  connection_token:
    description:
      - A token to use as it is (connection mode C(token)), or a director session token.
      - Falls back to E(CONNECTION_TOKEN), then to the token cached in the profile.
      - Never logged.
    type: str
  connection_mode:
    description:
      - How to authenticate. C(auto) picks C(mtls) when a client bundle exists, else C(key) when a key is set,
        else C(token).
      - Falls back to E(CONNECTION_MODE), then to the profile's C(connection-mode), then C(auto).
    type: str
    choices: [auto, key, token, mtls, edge, plaintext]
  ca_path:
    description:
      - CA certificate (PEM) that signs the server's certificate.
      - Falls back to E(CONNECTION_CA), then to the profile's C(connection-ca), then to the system trust store.
    type: path
    aliases: [ca_cert]
  connection_fingerprint:
    description:
      - SHA-256 fingerprint of the server's certificate; exactly that certificate is accepted (no CA needed).
      - Falls back to E(CONNECTION_FINGERPRINT), then to the profile's C(connection-fingerprint).
    type: str
  client_cert:
    description:
      - Client certificate (PEM) for mTLS, for example a director admin bundle's C(tls.crt).
      - Falls back to E(CONNECTION_CERT), then the profile's C(connection-cert), then
        C(<DXFLOW_HOME>/<profile>/mtls/tls.crt).
    type: path
  client_key:
    description:
      - Private key of O(client_cert) (mode 0600).
      - Falls back to E(CONNECTION_CERT_KEY), then the profile's C(connection-cert-key), then
        C(<DXFLOW_HOME>/<profile>/mtls/tls.key).
    type: path
  validate_certs:
    description:
      - Set to V(false) to turn TLS verification off (with a warning). Prefer O(connection_fingerprint).
      - When not set, E(CONNECTION_INSECURE) and the profile's C(connection-insecure) decide; verification is on
        by default.
    type: bool
  timeout:
    description:
      - Seconds to wait for the server on each request.
      - Falls back to E(CONNECTION_TIMEOUT), then the profile's C(connection-timeout), then C(30).
    type: float
  connection_route:
    description:
      - How the engine is reached. V(direct) connects to its address; V(director) goes through the hub of the
        director named by O(connection_director), which relays a byte stream to the engine over the tunnel its agent
        keeps open (hosts behind firewalls). TLS and the engine login run end to end on both routes.
      - Falls back to E(CONNECTION_ROUTE), then the profile's C(connection-route), then V(direct).
    type: str
    choices: [direct, director]
  connection_director:
    description:
      - Profile of the director to go through when O(connection_route=director) (its address and credentials).
      - Falls back to E(CONNECTION_DIRECTOR), then the profile's C(connection-director).
    type: str
  connection_server:
    description:
      - The server's id or hostname on the director when O(connection_route=director) (default the host part of
        O(connection_address)).
      - Falls back to E(CONNECTION_SERVER), then the profile's C(connection-server).
    type: str
requirements:
  - On the controller only, the third-party libraries in the collection's C(requirements.txt)
    (C(pip install -r ansible_collections/dxflow/remote/requirements.txt)). The dxflow SDK ships with the collection
    (C(src/)) and is used when no C(dxflow) package is installed. Managed hosts need nothing of the collection's.
notes:
  - Modules run on the controller (action plugins), whatever the host's connection and Python are. Engine modules
    (C(engine_info), C(workflow), C(workflow_info), C(key)) act on the inventory host's engine; when the task sets
    neither O(profile) nor O(connection_address), the host's connection settings fill in the unset options (its
    C(dxflow.remote.engine) connection options, else its C(ansible_dxflow_*) variables), and the token that connection
    cached is reused.
  - Values resolve in this order, first hit wins; module parameter or plugin option, then the environment
    (E(CONNECTION_ADDRESS), E(CONNECTION_KEY), ... the profile key upper-cased with C(_)), then the profile file,
    then the built-in default.
  - A token obtained with the key is written back to the profile (mode 0600), so later runs skip the handshake.
"""

    # Plugins (lookups, inventory, connection) also read the options from vars, ini and environment.
    # Secrets (connection_token) get no ini source.
    PLUGINS = r"""
options:
  profile:
    env:
      - name: DXFLOW_PROFILE
    ini:
      - section: dxflow_connection
        key: profile
    vars:
      - name: ansible_dxflow_profile
  connection_address:
    env:
      - name: CONNECTION_ADDRESS
    ini:
      - section: dxflow_connection
        key: connection_address
    vars:
      - name: ansible_dxflow_connection_address
  connection_key:
    env:
      - name: CONNECTION_KEY
    ini:
      - section: dxflow_connection
        key: connection_key
    vars:
      - name: ansible_dxflow_connection_key
  connection_token:
    env:
      - name: CONNECTION_TOKEN
    vars:
      - name: ansible_dxflow_connection_token
  connection_mode:
    env:
      - name: CONNECTION_MODE
    ini:
      - section: dxflow_connection
        key: connection_mode
    vars:
      - name: ansible_dxflow_connection_mode
  ca_path:
    env:
      - name: CONNECTION_CA
    ini:
      - section: dxflow_connection
        key: ca_path
    vars:
      - name: ansible_dxflow_ca_path
  connection_fingerprint:
    env:
      - name: CONNECTION_FINGERPRINT
    ini:
      - section: dxflow_connection
        key: connection_fingerprint
    vars:
      - name: ansible_dxflow_connection_fingerprint
  client_cert:
    env:
      - name: CONNECTION_CERT
    ini:
      - section: dxflow_connection
        key: client_cert
    vars:
      - name: ansible_dxflow_client_cert
  client_key:
    env:
      - name: CONNECTION_CERT_KEY
    ini:
      - section: dxflow_connection
        key: client_key
    vars:
      - name: ansible_dxflow_client_key
  validate_certs:
    ini:
      - section: dxflow_connection
        key: validate_certs
    vars:
      - name: ansible_dxflow_validate_certs
  timeout:
    env:
      - name: CONNECTION_TIMEOUT
    ini:
      - section: dxflow_connection
        key: timeout
    vars:
      - name: ansible_dxflow_timeout
  connection_route:
    env:
      - name: CONNECTION_ROUTE
    ini:
      - section: dxflow_connection
        key: connection_route
    vars:
      - name: ansible_dxflow_connection_route
  connection_director:
    env:
      - name: CONNECTION_DIRECTOR
    ini:
      - section: dxflow_connection
        key: connection_director
    vars:
      - name: ansible_dxflow_connection_director
  connection_server:
    env:
      - name: CONNECTION_SERVER
    ini:
      - section: dxflow_connection
        key: connection_server
    vars:
      - name: ansible_dxflow_connection_server
"""
