"""Policy packs in Rego (shipped and custom), their bindings, and the decisions they give."""
