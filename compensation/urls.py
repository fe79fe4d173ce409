from django.urls import path

from compensation import apis

app_name = "compensation"

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("offer-sets/", apis.OfferSetListCreateApi.as_view(), name="offer-set-list"),
    path("offer-sets/<uuid:offer_set_id>/", apis.OfferSetDetailApi.as_view(), name="offer-set-detail"),
    path("offer-sets/<uuid:offer_set_id>/outcome/", apis.OutcomeSubmitApi.as_view(), name="offer-set-outcome"),
    path("escalations/", apis.EscalationListApi.as_view(), name="escalation-list"),
    path("escalations/<int:escalation_id>/", apis.EscalationDetailApi.as_view(), name="escalation-detail"),
    path(
        "escalations/<int:escalation_id>/acknowledge/",
        apis.EscalationAcknowledgeApi.as_view(),
        name="escalation-acknowledge",
    ),
    path("escalations/<int:escalation_id>/resolve/", apis.EscalationResolveApi.as_view(), name="escalation-resolve"),
    path("escalations/<int:escalation_id>/approve/", apis.EscalationApproveApi.as_view(), name="escalation-approve"),
    path("escalations/<int:escalation_id>/reject/", apis.EscalationRejectApi.as_view(), name="escalation-reject"),
    path("simulations/", apis.SimulationStartApi.as_view(), name="simulation-start"),
    path("simulations/<uuid:simulation_id>/", apis.SimulationDetailApi.as_view(), name="simulation-detail"),
    path("events/", apis.EventListCreateApi.as_view(), name="event-list"),
    path("events/<int:event_id>/", apis.EventDetailApi.as_view(), name="event-detail"),
    path("events/<int:event_id>/customers/", apis.EventCustomersApi.as_view(), name="event-customers"),
    path("events/<int:event_id>/cancel/", apis.EventCancelApi.as_view(), name="event-cancel"),
    path("feedback/<str:token>/", apis.FeedbackSubmitApi.as_view(), name="feedback"),
    # Before the detail: "bulk" is not an external_id here. <path:>: an external_id may hold a "/".
    path("customers/bulk/", apis.CustomersBulkApi.as_view(), name="customer-bulk"),
    path("customers/<path:external_id>/", apis.CustomerDetailApi.as_view(), name="customer-detail"),
]
