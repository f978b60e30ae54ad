"""The gust client as an installable package.

A setup.py rather than a pyproject.toml build: pip builds it with the
setuptools already installed (python3-setuptools), so it installs on machines
without a package index (a pyproject build first fetches setuptools into an
isolated environment). On Debian the system Python refuses pip installs
(PEP 668): install into a virtualenv that sees the Debian packages,

    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install ./python

or with `/usr/bin/python3 -m pip install --break-system-packages ./python`.
"""
from setuptools import find_packages, setup

setup(
    name="gust",
    version="0.1.0",
    description="Map Python functions over arguments in gust sandboxes "
                "(Pywren/Lithops API, concurrent.futures, joblib) and its object store",
    packages=find_packages(include=["gust", "gust.*"]),  # gust.lithops and its storage too
    python_requires=">=3.9",
    install_requires=["cloudpickle", "tqdm", "matplotlib", "joblib"],
)
