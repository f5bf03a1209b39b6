"""Offline stand-in for the get-pip.py that ``ansible-test`` downloads (ansible/ansible issue 77304).

ansible-test bootstraps pip in its sanity venvs with a script from a host this machine cannot reach; it runs the
script saved at ``~/.ansible/test/cache/get_pip_<version>.py`` instead when present. This stand-in installs pip
with ``ensurepip`` and then ``pip install``s the requested packages (``--cert`` with the system CA bundle, since
ansible-test scrubs the environment). ``tools/sanity.sh`` puts it in place.
"""

import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def main() -> None:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--cert", CA_BUNDLE, *args])


if __name__ == "__main__":
    main()
