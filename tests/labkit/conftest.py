"""labkit tests share the lab scripts' in-process moto account."""

from tests.lab_scripts.conftest import aws  # noqa: F401 - re-exported fixture
