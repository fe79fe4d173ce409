from django.urls import path

from console import escalations, views

app_name = "console"

urlpatterns = [
    path("", views.console_home, name="home"),
    path("login/", views.ConsoleLoginView.as_view(), name="login"),
    path("logout/", views.ConsoleLogoutView.as_view(), name="logout"),
    path("escalations/", escalations.escalation_queue, name="escalations"),
    *(
        path(
            f"escalations/<int:escalation_id>/{action}/",
            escalations.escalation_action,
            {"action": action},
            name=f"escalation_{action}",
        )
        for action in escalations.ACTIONS
    ),
]
