"""The web page at ``/``: upload a reference and a scene, see the boxes and masks drawn.

The page is a template and a small vanilla script (``static/siammatch.js``, no CDN: the
service must work with nothing else reachable). It calls the JSON API like any client and
draws the result on a canvas: translucent masks decoded from their COCO RLE in the
browser, boxes, polygons and score labels.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from api.state import current_services

bp = Blueprint(
    "web",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)


@bp.get("/")
def index() -> str:
    """The web page.

    Returns:
        The HTML page.
    ---
    get:
      summary: Web page to try matching and search
      tags: [service]
      security: []
      responses:
        200:
          description: The HTML page.
          content:
            text/html:
              schema: {type: string}
    """
    services = current_services()
    return render_template(
        "index.html",
        recipes=sorted(services.matchers),
        default_recipe=services.default_recipe,
        has_catalog=services.catalog is not None,
        auth_required=bool(current_app.config.get("API_KEY")),
        max_instances=services.limits.max_instances,
        default_max_instances=services.default_max_instances(services.default_recipe),
    )
