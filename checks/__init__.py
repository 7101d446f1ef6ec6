"""The preflight check catalogue: one check per module, compatibility data in ``data/*.yaml``.

Every module here defines one :class:`migrate.preflight.base.Check` subclass; importing the
package's modules registers them (``migrate.preflight.registry.load_catalogue``).
"""
