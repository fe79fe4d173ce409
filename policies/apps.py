from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Compensation policies"

    def ready(self) -> None:
        from policies import signals  # noqa: F401  (connects the revision signals)
