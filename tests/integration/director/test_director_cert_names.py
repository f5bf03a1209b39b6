"""``server_cert_names``: extra DNS names and IP addresses in the director's server certificate."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from cryptography import x509

from tests.harness.director_harness import Director
from tests.timeouts import scaled


def _presented(director: Director) -> x509.Certificate:
    """The certificate the running director presents (what an agent checks on every update and renewal)."""
    pem = ssl.get_server_certificate(("127.0.0.1", director.port), timeout=scaled(10))
    return x509.load_pem_x509_certificate(pem.encode())


def _names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def test_extra_names_are_in_the_certificate_and_a_change_reissues_it(tmp_path: Path) -> None:
    director = Director(tmp_path / "d", server_cert_names=["director.example.test", "192.0.2.10"]).start()
    try:
        first = _presented(director)
        assert {"director.example.test", "192.0.2.10", "localhost", "127.0.0.1"} <= _names(first)
        # An agent given the address checks it against the IP SAN.
        assert ipaddress.ip_address("192.0.2.10") in first.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.IPAddress)
        director.stop()
        director.start()
        assert _presented(director).serial_number == first.serial_number  # same names: kept
        director.stop()
        director.config["server_cert_names"] = ["other.example.test"]
        director.start()
        second = _presented(director)
        assert second.serial_number != first.serial_number
        assert "other.example.test" in _names(second) and "director.example.test" not in _names(second)
        logged = [line for line in director.log().splitlines() if "server certificate for" in line]
        assert "other.example.test" in logged[-1] and f"serial {second.serial_number:x}" in logged[-1]
    finally:
        director.stop()
