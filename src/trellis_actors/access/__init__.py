"""Who may do what: API tokens with scopes (:mod:`.tokens`) and the one check every route
of the API and the web UI goes through (:mod:`.check`)."""
