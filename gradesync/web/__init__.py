"""The registrars' web app (``gradesync serve``): upload, map, preview, approve, apply, result, history.

``app.create_app(WebConfig(...))`` builds the starlette app; ``runner`` is the only module that calls
the pipeline. See README "The web app".
"""

__all__: list[str] = []  # a package of modules: import what you need from each
