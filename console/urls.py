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
    # The agents' page: options for an incident, the stored customer, an offer set and its outcome.
    path("options/", views.options_get, name="options"),
    path("customer/", views.customer_lookup, name="customer"),
    path("offer-sets/<uuid:offer_set_id>/", views.offer_set_page, name="offer_set"),
    path("offer-sets/<uuid:offer_set_id>/outcome/", views.outcome_record, name="outcome"),
    path("offer-sets/<uuid:offer_set_id>/status/", views.outcome_status, name="outcome_status"),
]
