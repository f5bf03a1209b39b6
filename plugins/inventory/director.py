# -*- coding: utf-8 -*-
# Copyright (c) dxflow.remote maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: director
short_description: Hosts from the dxflow director's server list
description:
  - Every server whose agent reports to the director (C(/v1/servers)) becomes a host. By default it gets only the host
    variables that connecting needs. With O(use_engine_connection) that is C(ansible_dxflow_connection_address) and
    C(ansible_dxflow_connection_fingerprint), and C(ansible_connection) is set once on the group C(dxflow_engines).
    Without it, that is C(ansible_host). O(extra_hostvars) adds more, for example the platform the agent reports
    (C(dxflow_os), C(dxflow_arch), C(dxflow_engine_version), C(dxflow_agent_version)).
  - O(compose), O(groups) and O(keyed_groups) can use every field (C(dxflow_os), C(dxflow_state), C(dxflow_tags),
    C(dxflow_engine), C(dxflow_stats)...) whether or not it is set as a host variable, so grouping by OS or version
    costs no host variable (a O(keyed_groups) entry with C(key) V(dxflow_os)).
  - Groups come from tags (C(tag_<tag>)) and from the policy's pools (C(pool_<pool>)); Constructable options add
    more (compose, groups, keyed_groups).
  - With O(use_engine_connection), hosts are reached through their engine (connection C(dxflow.remote.engine)),
    pinned to the fingerprint the agent reported, so self-signed engines are verified without a CA.
  - Authenticates with the profile's mTLS client bundle (C(dxflow director issue-client-cert)), a token, or an
    admin login (O(director_user)).
  - The inventory file name must end in C(.dxflow_director.yml), C(.dxflow_director.yaml), C(.director.yml) or
    C(.director.yaml).
author:
  - dxflow.remote maintainers (@dxflow)
options:
  plugin:
    description: Marks the file as this plugin's.
    type: str
    required: true
    choices: [dxflow.remote.director]
  director_user:
    description: Administrator to log in as instead of using a client bundle or token.
    type: str
    env:
      - name: DXFLOW_DIRECTOR_USER
  director_password:
    description: Password of O(director_user).
    type: str
    env:
      - name: DXFLOW_DIRECTOR_PASSWORD
  hostnames:
    description:
      - Preference list for the inventory hostname; the first field a server has wins.
      - Fields are keys of the server entry, dotted for nested ones (C(engine.address)).
    type: list
    elements: str
    default: [hostname, ip, id]
  include_tags:
    description: Keep only servers that carry at least one of these tags.
    type: list
    elements: str
    default: []
  exclude_tags:
    description: Drop servers that carry any of these tags.
    type: list
    elements: str
    default: []
  include_pools:
    description: Keep only servers in at least one of these pools.
    type: list
    elements: str
    default: []
  exclude_pools:
    description: Drop servers in any of these pools.
    type: list
    elements: str
    default: []
  include_states:
    description:
      - Keep only servers in these states. V(online) servers reported within O(stale_after) seconds, V(stale) ones
        did not.
    type: list
    elements: str
    choices: [online, stale]
    default: [online, stale]
  stale_after:
    description: Seconds without an update after which a server counts as V(stale).
    type: float
    default: 90
  tag_group_prefix:
    description: Prefix of the groups made from tags.
    type: str
    default: tag_
  pool_group_prefix:
    description: Prefix of the groups made from pools.
    type: str
    default: pool_
  extra_hostvars:
    description:
      - Host variables to add to the lean default set. V(id) (C(dxflow_id)), V(state) (C(dxflow_state), V(online)
        or V(stale)), V(tags) (C(dxflow_tags)), V(pools) (C(dxflow_pools)), V(engine) (C(dxflow_engine) with the
        engine's C(address), C(port), C(fingerprint) and C(url)), V(stats) (C(dxflow_stats), the agent's host
        statistics), V(sessions) (C(dxflow_sessions)), V(hostname) (C(dxflow_hostname)), V(ip) (C(dxflow_ip)),
        V(last_update) (C(dxflow_last_update), seconds since the epoch), V(all) for every one of them.
      - The platform the agent reports, each set only when the agent reports it. V(os) (C(dxflow_os)), V(arch)
        (C(dxflow_arch)), V(engine_version) (C(dxflow_engine_version)), V(agent_version)
        (C(dxflow_agent_version)). Agents report the OS, architecture and their own version with every update, and
        the engine's version when their config has the engine key (C(engine_key)).
      - Each costs ansible-core time per host in every C(ansible-inventory) and C(ansible-playbook) run, lists and
        dicts the most. With 10,000 servers, each extra text variable adds about 6% of the bare-hosts time of
        C(ansible-inventory --list), and V(all) makes it about twice as slow as the default (see the collection's
        docs/performance.md). Add only what plays use; O(compose), O(groups) and O(keyed_groups) do not need them.
    type: list
    elements: str
    choices: [id, state, tags, pools, engine, stats, sessions, hostname, ip, last_update, os, arch, engine_version,
              agent_version, all]
    default: []
  use_engine_connection:
    description:
      - Reach each host through its engine. Each host gets the engine's address
        (C(ansible_dxflow_connection_address)) and certificate fingerprint (C(ansible_dxflow_connection_fingerprint))
        and joins the group C(dxflow_engines), whose C(ansible_connection) is C(dxflow.remote.engine).
      - The engine's credentials (C(ansible_dxflow_connection_key) or a token) come from group or host variables.
    type: bool
    default: false
  engine_route:
    description:
      - With O(use_engine_connection), how the engine connection reaches each host. V(director) goes through this
        director's hub (for hosts behind firewalls that only allow outbound connections). It sets
        C(ansible_dxflow_connection_route) and C(ansible_dxflow_connection_director) (the O(profile) of this
        inventory) on the group C(dxflow_engines) and C(ansible_dxflow_connection_server) (the server's id) per
        host.
    type: str
    choices: [direct, director]
    default: direct
extends_documentation_fragment:
  - dxflow.remote.connection
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
notes:
  - The connection options are read from the inventory file only (and, through the SDK, from the environment and
    the profile), not from variables, so C(ansible_dxflow_*) extra vars meant for the hosts' engine connection do
    not redirect the inventory.
  - Every value that comes from the director is marked unsafe, so a tag like C({{ lookup('pipe', 'id') }}) stays text.
    With ansible-core 2.19 and later that is the default for values an inventory plugin sets; the host variables
    are stored as they are, without ansible-core's per-value tagging pass.
  - When the director cannot be reached and the cache holds the server list, the cached list is used with a warning.
  - An option this plugin does not know in the inventory file is an error that names it.
  - Host variables are snake_case and start with C(dxflow_).
  - C(ansible-inventory --list --export) (what an AWX inventory sync stores) carries the connection variables per
    host and C(ansible_connection) on the group C(dxflow_engines), so AWX jobs reach the hosts without running
    this plugin again.
"""

EXAMPLES = r"""
# fleet.dxflow_director.yml
plugin: dxflow.remote.director
profile: director            # address + mTLS admin bundle in ~/.dxflow/director/mtls/
use_engine_connection: true
include_tags: [web, db]
exclude_pools: [maintenance]
extra_hostvars: [os, arch]   # dxflow_os, dxflow_arch as host variables too (each costs time at scale)
keyed_groups:
  - key: dxflow_state        # online / stale (compose and keyed_groups see every field)
    prefix: state
  - key: dxflow_engine_version
    prefix: engine
compose:
  cpu_usage: dxflow_stats.cpu_usage
  engine_port: dxflow_engine.port
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/dxflow-inventory
cache_timeout: 300
"""

import re
import time

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.plugins.loader import connection_loader
from ansible.utils.display import Display

from ansible_collections.dxflow.remote.plugins.plugin_utils._plugin import director_client, make_unsafe

try:
    from ansible.template import trust_as_template  # ansible-core >= 2.19
except ImportError:  # older ansible-core: plain text is a trusted template already

    def trust_as_template(value):
        return value


display = Display()

# Host variables whose values, when they match, can hold no template syntax (see InventoryModule._hostvars).
PLAIN_VALUES = {
    "ansible_dxflow_connection_address": re.compile(r"\Ahttps?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}\Z"),
    "ansible_dxflow_connection_fingerprint": re.compile(r"\A[0-9A-Fa-f:]{16,200}\Z"),
    "ansible_host": re.compile(r"\A[0-9A-Za-z.:-]{1,255}\Z"),
}

SUFFIXES = (".dxflow_director.yml", ".dxflow_director.yaml", ".director.yml", ".director.yaml")
# Where agents report the host's platform (first found wins): their stats and engine entries, or the server entry.
REPORTED = dict(
    os=("stats.os", "stats.platform", "os"),
    arch=("stats.arch", "stats.machine", "arch"),
    engine_version=("engine.version",),
    agent_version=("agentVersion", "agent_version", "stats.agent_version", "version"),
)


def reported(server, field):
    """The first place in REPORTED[field] the agent filled in, or None."""
    for place in REPORTED[field]:
        value = field_value(server, place)
        if value is not None:
            return value
    return None


def _reported(field):
    return lambda server, pools, state, engine: reported(server, field)


# extra_hostvars choice -> (host variable, its value from (server, pools, state, engine entry with url)).
FIELDS = dict(
    id=("dxflow_id", lambda server, pools, state, engine: server.get("id")),
    state=("dxflow_state", lambda server, pools, state, engine: state),
    tags=("dxflow_tags", lambda server, pools, state, engine: list(server.get("tags") or [])),
    pools=("dxflow_pools", lambda server, pools, state, engine: list(pools)),
    engine=("dxflow_engine", lambda server, pools, state, engine: engine),
    stats=("dxflow_stats", lambda server, pools, state, engine: server.get("stats") or {}),
    sessions=("dxflow_sessions", lambda server, pools, state, engine: server.get("sessions") or []),
    hostname=("dxflow_hostname", lambda server, pools, state, engine: server.get("hostname")),
    ip=("dxflow_ip", lambda server, pools, state, engine: server.get("ip")),
    last_update=("dxflow_last_update", lambda server, pools, state, engine: server.get("lastUpdate")),
    **dict((field, ("dxflow_" + field, _reported(field))) for field in REPORTED),
)
ENGINE_GROUP = "dxflow_engines"


def field_value(server, path):
    """``engine.address`` style access into a server entry; None when missing or empty."""
    value = server
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if value not in (None, "", [], {}) else None


def server_state(server, now, stale_after):
    last = server.get("lastUpdate") or 0
    return "online" if now - float(last) <= stale_after else "stale"


def pools_by_host(pools):
    """hostname -> sorted pool names, from ``[{"id": ..., "workstations": [...]}]``."""
    out = {}
    for pool in pools or []:
        for host in pool.get("workstations") or []:
            out.setdefault(host, []).append(pool["id"])
    return dict((host, sorted(names)) for host, names in out.items())


def engine_address(engine, fallback_ip=None):
    """``https://host:port`` of a server's engine entry, or None."""
    if not isinstance(engine, dict) or not engine.get("port"):
        return None
    host = engine.get("address") or fallback_ip
    if not host:
        return None
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    scheme = "http" if engine.get("plaintext") else "https"
    return "%s://%s:%s" % (scheme, host, engine["port"])


def preload_engine_connection():
    """Load the engine connection plugin (its code, docs and the SDK) in this, the parent process.

    Ansible forks a worker per task and host; a plugin the parent never loaded is imported and its documentation
    parsed again in every worker (~0.3 s per task on a busy 2-core machine). Loaded here, the workers inherit it.
    """
    try:
        connection_loader.get("dxflow.remote.engine", class_only=True)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        display.vvv("dxflow director: could not preload the engine connection plugin: %s" % exc)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "dxflow.remote.director"
    _extra = ()  # the extra_hostvars fields, set by parse()

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(SUFFIXES)

    def _fetch(self):
        """(servers, pools) from the director."""
        with director_client(self, "Listing the director's servers") as client:
            from dxflow.protocol.errors import NotFound

            servers = client.servers()
            try:
                pools = client.pools()
            except NotFound:
                pools = []  # a director without the pools endpoint
        return dict(servers=servers, pools=pools)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        config = self._read_config_data(path) or {}
        unknown = sorted(set(config) - set(self._options))
        if unknown:
            raise AnsibleError("dxflow director: unknown option(s) %s in %s" % (", ".join(unknown), path))
        extra = set(self.get_option("extra_hostvars"))
        self._extra = sorted(FIELDS) if "all" in extra else sorted(extra)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache")
        read_cache = use_cache and cache
        update_cache = use_cache and not cache
        data = None
        if read_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if data is None:
            try:
                data = self._fetch()
            except AnsibleError as exc:
                data = self._cached_fallback(cache_key, use_cache, exc)
                update_cache = False
        if update_cache:
            # Written only after a fetch: reading the cache must not extend its lifetime.
            self._cache[cache_key] = data
        self._populate(data)
        if self.get_option("use_engine_connection"):
            preload_engine_connection()

    def _cached_fallback(self, cache_key, use_cache, exc):
        if use_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                pass
            else:
                display.warning("%s; using the cached server list" % exc)
                return data
        raise exc

    def _filters(self):
        """``keep(server, pools, state)`` for the include/exclude options, read once per parse."""
        include_tags, exclude_tags = set(self.get_option("include_tags")), set(self.get_option("exclude_tags"))
        include_pools, exclude_pools = set(self.get_option("include_pools")), set(self.get_option("exclude_pools"))
        states = set(self.get_option("include_states"))

        def keep(server, pools, state):
            tags = set(server.get("tags") or [])
            if (include_tags and not tags & include_tags) or tags & exclude_tags:
                return False
            if (include_pools and not include_pools.intersection(pools)) or exclude_pools.intersection(pools):
                return False
            return state in states

        return keep

    def _hostname(self, server):
        for preference in self.get_option("hostnames"):
            value = field_value(server, preference)
            if value is not None:
                return str(value)
        return None

    def _populate(self, data):
        now = time.time()
        membership = pools_by_host(data.get("pools"))
        keep = self._filters()
        strict, stale_after = self.get_option("strict"), self.get_option("stale_after")
        compose, groups, keyed = (self.get_option(name) for name in ("compose", "groups", "keyed_groups"))
        constructed = bool(compose or groups or keyed)
        tag_prefix, pool_prefix = self.get_option("tag_group_prefix"), self.get_option("pool_group_prefix")
        use_engine = self.get_option("use_engine_connection")
        route = use_engine and self.get_option("engine_route") == "director"
        seen = {}
        engines = None
        for server in data.get("servers") or []:
            pools = membership.get(server.get("hostname"), [])
            state = server_state(server, now, stale_after)
            if not keep(server, pools, state):
                continue
            name = self._hostname(server)
            if name is None:
                display.warning(
                    "dxflow director: server %s has none of the hostnames fields %s; skipped"
                    % (server.get("id"), self.get_option("hostnames"))
                )
                continue
            if name in seen:
                # The director keeps hostnames unique; a clash here means another `hostnames` field repeats.
                raise AnsibleError(
                    "dxflow director: servers %s and %s share the inventory name %s; choose "
                    "`hostnames` that name each server once" % (seen[name], server.get("id"), name)
                )
            seen[name] = server.get("id")
            host = self.inventory.add_host(make_unsafe(name))
            hostvars, fields = self._hostvars(server, pools, state, use_engine, self._extra, constructed)
            if route and "ansible_dxflow_connection_address" in hostvars:
                hostvars["ansible_dxflow_connection_server"] = make_unsafe(server.get("id"))
            # Straight into the host's variables: InventoryData.set_variable (through ansible-core 2.19's
            # wrapper, which walks and tags every value) costs more per host than the host's whole listing.
            # The values are untrusted text either way (make_unsafe), so templates in them stay text.
            self.inventory.hosts[host].vars.update(hostvars)
            if "ansible_dxflow_connection_address" in hostvars:
                self.inventory.add_child(engines or self._engine_group(), host)
                engines = ENGINE_GROUP
            for tag in server.get("tags") or []:
                self.inventory.add_child(self.inventory.add_group(self._sanitize_group_name(tag_prefix + tag)), host)
            for pool in pools:
                self.inventory.add_child(self.inventory.add_group(self._sanitize_group_name(pool_prefix + pool)), host)
            if constructed:
                self._set_composite_vars(compose, fields, host, strict=strict)
                self._add_host_to_composed_groups(groups, fields, host, strict=strict)
                self._add_host_to_keyed_groups(keyed, fields, host, strict=strict)

    def _engine_group(self):
        """The group of hosts reached through their engine: ``ansible_connection`` (and with ``engine_route:
        director`` the route and this inventory's director profile) are set once, on it.

        These are this plugin's own constants and the inventory file's profile, not the director's data, so they
        are stored as trusted text: ``ansible-inventory --list`` repeats group variables in every host's listing,
        and an untrusted string costs ansible-core's serializer several times a plain one."""
        group = self.inventory.add_group(ENGINE_GROUP)
        group_vars = dict(ansible_connection="dxflow.remote.engine")
        if self.get_option("engine_route") == "director":
            if not self.get_option("profile"):
                raise AnsibleError("dxflow director: engine_route: director needs the director's profile in 'profile'")
            group_vars.update(
                ansible_dxflow_connection_route="director",
                ansible_dxflow_connection_director=self.get_option("profile"),
            )
        self.inventory.groups[group].vars.update((k, trust_as_template(v)) for k, v in group_vars.items())
        return group

    @staticmethod
    def _hostvars(server, pools, state, use_engine, extra=(), constructed=True):
        """(host variables to set, every field for compose/groups/keyed_groups or None), both marked unsafe.

        Set are only what connecting needs (the engine's address and pinned fingerprint, or ``ansible_host``) and
        the ``extra`` fields (the platform ones only when the agent reports them): every variable costs
        ansible-core time per host. ``constructed`` False skips building the fields nobody reads."""
        entry = server.get("engine") if isinstance(server.get("engine"), dict) else {}
        url = engine_address(entry, server.get("ip"))
        engine = dict(entry, url=url)
        hostvars = {}
        for field in extra:
            name, value = FIELDS[field]
            hostvars[name] = value(server, pools, state, engine)
            if hostvars[name] is None and field in REPORTED:
                del hostvars[name]
        if use_engine and url:
            hostvars["ansible_dxflow_connection_address"] = url
            if entry.get("fingerprint"):
                hostvars["ansible_dxflow_connection_fingerprint"] = entry["fingerprint"]
        elif server.get("ip") or entry.get("address"):
            hostvars["ansible_host"] = server.get("ip") or entry.get("address")
        hostvars = make_unsafe(hostvars)
        # The connection's values, when they cannot hold template syntax (a URL of host and port, a hex
        # fingerprint), are stored as plain trusted text: ansible-core 2.19 prints each untrusted string as
        # {"__ansible_unsafe": ...}, which costs `ansible-inventory --list` per host. Anything else stays untrusted.
        for key, pattern in PLAIN_VALUES.items():
            value = hostvars.get(key)
            if value is not None and pattern.match(str(value)):
                hostvars[key] = trust_as_template(str(value))
        if not constructed:
            return hostvars, None
        fields = dict(
            (name, value(server, pools, state, engine))
            for field, (name, value) in FIELDS.items()
            if field not in REPORTED or reported(server, field) is not None
        )
        fields = make_unsafe(fields)
        fields.update(hostvars)
        return hostvars, fields
