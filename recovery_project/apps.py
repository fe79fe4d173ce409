from django.contrib.admin.apps import AdminConfig


class RecoveryAdminConfig(AdminConfig):
    """``django.contrib.admin`` with the project's site (recovery_project/admin.py) as ``admin.site``."""

    default_site = "recovery_project.admin.RecoveryAdminSite"

    def ready(self) -> None:
        super().ready()
        from recovery_project import checks  # noqa: F401  (registers the deploy checks)
