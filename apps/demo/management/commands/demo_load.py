"""Load the demo: teams, people in every role, a CI service account, models across risk tiers and data
categories, versions with small real artifacts (ONNX and skops, generated now), datasets, and the audit
trail those actions produce. Idempotent: what exists already is left alone.
"""

from __future__ import annotations

import io
import os

import pyarrow.csv as pacsv
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts import services as accounts
from apps.accounts.models import ServiceAccount, Team, User
from apps.accounts.principals import principal_for_service_account, principal_for_user
from apps.audit import context
from apps.core.principals import Principal
from apps.demo import artifacts, customers
from apps.rbac import services as rbac
from apps.registry import services as registry
from apps.registry.models import Dataset, ModelVersion, RegisteredModel

CUSTOMERS = "customer-records"
CUSTOMER_ROWS = 600
# Training and evaluation rows are drawn from one generating rule per model; the evaluation rows are held out
# from training. 2,000 evaluation rows keep the six sex × age_band groups at about 330 rows each, so that a
# fair model's measured disparities stay well below the thresholds instead of swinging with sampling noise.
TRAINING_ROWS = 1000
EVALUATION_ROWS = 2000
# A feature that moves with the applicant's age band (in standard deviations): credit history, a patient's age.
AGE_SHIFT = {"18-30": -1.0, "31-50": 0.0, "51+": 1.0}
DEMO_PASSWORD_ENV = "ASSAY_DEMO_PASSWORD"  # noqa: S105 (the variable's name, not a secret)
DEFAULT_PASSWORD = "assay-demo-2026"  # noqa: S105 - printed on start; the demo is for a laptop, never production

TEAMS = [
    ("credit-risk", "Credit Risk", "Consumer lending models"),
    ("marketing", "Marketing Analytics", "Propensity and churn"),
    ("clinical-ai", "Clinical AI", "Decision support for clinicians"),
]

# username, full name, role, scope team (None = global), member of
PEOPLE = [
    ("admin", "Ada Admin", "admin", None, []),
    ("alice", "Alice Engineer", "contributor", "credit-risk", ["credit-risk"]),
    ("priya", "Priya Engineer", "contributor", "credit-risk", ["credit-risk"]),
    ("mark", "Mark Engineer", "contributor", "marketing", ["marketing"]),
    ("bob", "Bob Reviewer", "reviewer", None, []),
    ("carol", "Carol Compliance", "compliance_officer", None, []),
    ("dave", "Dave Release", "release_manager", None, []),
    ("erin", "Erin Auditor", "auditor", None, []),
    ("victor", "Victor Viewer", "viewer", "credit-risk", ["credit-risk"]),
]

MODELS = [
    {
        "name": "credit-scoring",
        "owner_team": "credit-risk",
        "risk_tier": "high",
        "data_categories": ["personal", "financial"],
        "jurisdictions": ["EU", "UK"],
        "description": "Probability of default for consumer loan applications.",
        "intended_use": "Ranks applications for manual underwriting review; never declines on its own.",
        "limitations": "Trained on 2019-2024 applications; not validated for small-business lending.",
        "columns": ["income", "debt_ratio", "credit_history_months", "open_accounts"],
        # Credit history grows with age; once income, debt and open accounts are known, repayment does not
        # depend on it. v2 and v3 learn that from today's data and are fair by sex, by age band and to both.
        "rule": {
            "weights": {"credit_history_months": 0.0},
            "shifts": {"credit_history_months": ("age_band", AGE_SHIFT)},
        },
        # v1 was trained on 2019 applications labelled by the underwriting rule of the time, which leaned on
        # credit history and so on age: the fairness pack refuses it (age band), and the accuracy its CI
        # measured on held-out 2019 applications is more than it measures on today's evaluation set.
        "earlier": {
            "versions": [1],
            "dataset": "credit-scoring-training-2019",
            "weights": {"credit_history_months": 0.6},
            "about": "2019 applications labelled by the underwriting rule of the time",
        },
        "versions": ["onnx", "skops", "skops"],
        # v3 gets no explainability report from demo_evidence: its release request waits for one
        "explain_later": 3,
        "author": "ci-credit",
        # every new version gets these as soon as it is verified
        "default_evidence": ["bias", "pii_scan"],
        # what the policy packs read (GDPR Art. 22 and 35, EU AI Act Art. 14, the fairness pack)
        "facts": {
            "automated_decisions": False,
            "human_review_path": "Every ranked application is decided by an underwriter (Lending Ops LO-7).",
            "dpia_reference": "DPIA-2026-014",
            "human_oversight": "Underwriters see the score with its top SHAP reasons and may override it; "
            "overrides are sampled monthly by Credit Risk.",
            "fairness_thresholds": {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.2},
        },
    },
    {
        "name": "fraud-detector",
        "owner_team": "credit-risk",
        "risk_tier": "limited",
        "data_categories": ["payment_card", "financial"],
        "jurisdictions": ["EU", "US"],
        "description": "Flags card transactions for fraud review.",
        "intended_use": "Queues suspicious transactions for an analyst.",
        "limitations": "Card-present transactions only.",
        "columns": ["amount", "merchant_risk", "hour", "distance_km"],
        "versions": ["onnx"],
        "author": "alice",
    },
    {
        "name": "churn-predictor",
        "owner_team": "marketing",
        "risk_tier": "minimal",
        "data_categories": ["personal"],
        "jurisdictions": ["EU"],
        "description": "Likelihood that a subscriber cancels within 90 days.",
        "intended_use": "Targets retention offers.",
        "limitations": "Ignores customers younger than 30 days.",
        "columns": ["tenure_days", "monthly_spend", "support_tickets"],
        "versions": ["skops", "predictions_only"],
        "author": "mark",
    },
    {
        "name": "readmission-risk",
        "owner_team": "clinical-ai",
        "risk_tier": "high",
        "data_categories": ["health", "personal"],
        "jurisdictions": ["US"],
        "description": "30-day hospital readmission risk.",
        "intended_use": "Supports discharge planning by care teams.",
        "limitations": "Adult inpatients only; not for paediatric use.",
        "columns": ["age", "length_of_stay", "prior_admissions", "hba1c"],
        # readmission risk rises with age, so an accurate model selects older patients more often: the
        # fairness pack's demographic parity rule blocks it by age band
        "rule": {"weights": {"age": 1.0}, "shifts": {"age": ("age_band", AGE_SHIFT)}},
        "versions": ["onnx"],
        "author": "admin",
        "facts": {
            "human_oversight": "A discharge planner reviews every score before it reaches the care plan.",
        },
    },
    {
        "name": "emotion-recognition",
        "owner_team": "marketing",
        "risk_tier": "unacceptable",
        "data_categories": ["biometric", "personal"],
        "jurisdictions": ["EU"],
        "description": "Infers emotions from in-store camera frames (registered to document its prohibition).",
        "intended_use": "None: prohibited practice under the EU AI Act, Art. 5.",
        "limitations": "Must never be released.",
        "columns": ["f1", "f2", "f3"],
        "versions": ["onnx"],
        "author": "mark",
    },
]


def dataset_names() -> list[str]:
    """The demo's datasets: each model's training (and earlier training) and evaluation data, the customers."""
    names = []
    for spec in MODELS:
        names += [f"{spec['name']}-training", f"{spec['name']}-evaluation"]
        if "earlier" in spec:
            names.append(spec["earlier"]["dataset"])
        if "predictions_only" in spec["versions"]:
            names.append(f"{spec['name']}-predictions")
    return [*names, CUSTOMERS]


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")

    def handle(self, *args, **options):
        context.update(source="cli")
        system = Principal.system("demo")
        password = os.environ.get(DEMO_PASSWORD_ENV, DEFAULT_PASSWORD)
        teams = self._teams(system)
        users = self._people(system, teams, password)
        ci = self._service_account(system, users["alice"], teams["credit-risk"])
        actors = {name: principal_for_user(user) for name, user in users.items()}
        actors["ci-credit"] = principal_for_service_account(ci)
        created = 0
        for i, spec in enumerate(MODELS):
            created += self._model(
                spec, seed=100 + i, actor=actors[spec["author"]], teams=teams, approver=actors["carol"]
            )
        self._customers(actors["alice"], teams["credit-risk"])
        self.stdout.write(self.style.SUCCESS(f"demo loaded ({created} new versions)"))
        if not options["quiet"]:
            self._print_logins(password)

    def _teams(self, system: Principal) -> dict[str, Team]:
        teams = {}
        for name, display, description in TEAMS:
            team = Team.objects.filter(name=name).first()
            if team is None:
                team = accounts.team_create(actor=system, name=name, display_name=display, description=description)
            teams[name] = team
        return teams

    def _people(self, system: Principal, teams: dict[str, Team], password: str) -> dict[str, User]:
        users = {}
        for username, full_name, role, scope_team, member_of in PEOPLE:
            user = User.objects.filter(username=username).first()
            if user is None:
                first, _, last = full_name.partition(" ")
                user = accounts.user_create(
                    actor=system,
                    username=username,
                    password=password,
                    email=f"{username}@assay.example",
                    first_name=first,
                    last_name=last,
                    check_password=False,
                )
            for team_name in member_of:
                accounts.team_member_add(actor=system, team=teams[team_name], user=user)
            rbac.role_grant(actor=system, subject=user, role=role, team=teams[scope_team] if scope_team else None)
            users[username] = user
        return users

    def _service_account(self, system: Principal, owner: User, team: Team) -> ServiceAccount:
        account = ServiceAccount.objects.filter(name="ci-credit").first()
        if account is None:
            account = accounts.service_account_create(
                actor=system, name="ci-credit", owner=owner, team=team, description="CI pipeline of credit-risk"
            )
        rbac.role_grant(actor=system, subject=account, role="contributor", team=team)
        return account

    def _model(self, spec: dict, *, seed: int, actor: Principal, teams: dict[str, Team], approver: Principal) -> int:
        model = RegisteredModel.objects.filter(name=spec["name"]).first()
        if model is None:
            model = registry.model_create(
                actor=actor,
                name=spec["name"],
                owner_team=teams[spec["owner_team"]],
                description=spec["description"],
                intended_use=spec["intended_use"],
                limitations=spec["limitations"],
                risk_tier=spec["risk_tier"],
                data_categories=spec["data_categories"],
                jurisdictions=spec["jurisdictions"],
                default_evidence=spec.get("default_evidence", []),
            )
        self._facts(model, spec.get("facts", {}), actor, approver)
        team = teams[spec["owner_team"]]
        rule_spec = spec.get("rule", {})
        rule = artifacts.make_rule(seed, spec["columns"], **rule_spec)
        training_data = artifacts.draw(rule, seed, TRAINING_ROWS)
        evaluation_data = artifacts.draw(rule, seed + 1, EVALUATION_ROWS)
        train = self._dataset(f"{spec['name']}-training", training_data, team, actor)
        # per version: its training rows and dataset, and the held-out rows its CI measured it on (named)
        today = (training_data, train, evaluation_data, f"{spec['name']}-evaluation (held out)")
        sources = {number: today for number in range(1, len(spec["versions"]) + 1)}
        earlier = spec.get("earlier")
        if earlier is not None:
            earlier_rule = artifacts.make_rule(
                seed,
                spec["columns"],
                weights={**rule_spec.get("weights", {}), **earlier["weights"]},
                shifts=rule_spec.get("shifts"),
            )
            earlier_data = artifacts.draw(earlier_rule, seed + 2, TRAINING_ROWS)
            earlier_held_out = artifacts.draw(earlier_rule, seed + 3, EVALUATION_ROWS // 4)
            earlier_train = self._dataset(
                earlier["dataset"],
                earlier_data,
                team,
                actor,
                description=f"Synthetic {earlier['about']} ({TRAINING_ROWS} rows)",
            )
            earlier_source = (earlier_data, earlier_train, earlier_held_out, f"held-out {earlier['about']}")
            sources.update({number: earlier_source for number in earlier["versions"]})
        evaluation = self._dataset(f"{spec['name']}-evaluation", evaluation_data, team, actor)
        # A predictions-only version is evaluated on the same held-out rows with its predictions beside them,
        # in a dataset of its own: a version holding a model is scored on the rows without them.
        trained, evaluations = {}, {}
        if "predictions_only" in spec["versions"]:
            number = spec["versions"].index("predictions_only") + 1
            trained[number] = artifacts.train("predictions_only", training_data, evaluation_data, seed + number - 1)
            evaluations[number] = self._dataset(
                f"{spec['name']}-predictions",
                evaluation_data,
                team,
                actor,
                trained[number].predictions,
                description=f"The {EVALUATION_ROWS} rows of {evaluation.name} with the predictions of "
                f"{spec['name']}'s scoring service",
            )
        created = 0
        for index, kind in enumerate(spec["versions"]):
            number = index + 1
            if ModelVersion.objects.filter(model=model, number=number).exists():
                continue
            data, training_dataset, held_out, measured_on = sources[number]
            result = trained.get(number) or artifacts.train(kind, data, held_out, seed + index)
            with transaction.atomic():
                registry.version_create(
                    actor=actor,
                    model_name=model.name,
                    artifact=io.BytesIO(result.artifact) if result.artifact is not None else None,
                    format=kind,
                    description=f"{kind} model trained on {training_dataset.name}",
                    metrics=result.metrics,
                    source_repository=f"https://git.example.com/{spec['owner_team']}/{model.name}",
                    source_commit=f"{(seed * 7919 + index):040x}"[-40:],
                    ci_run_url=f"https://ci.example.com/{model.name}/runs/{1000 + index}",
                    training_dataset_ids=[training_dataset.pk],
                    evaluation_dataset_id=evaluations.get(number, evaluation).pk,
                    model_card={
                        "intended_use": spec["intended_use"],
                        "limitations": spec["limitations"],
                        "performance": f"AUC {result.metrics['auc']:.3f}, accuracy {result.metrics['accuracy']:.3f} "
                        f"on {measured_on}",
                        "human_oversight": "Every decision is reviewed by a trained analyst.",
                    },
                )
            created += 1
        return created

    def _facts(self, model: RegisteredModel, facts: dict, actor: Principal, approver: Principal) -> None:
        """Record what the policy packs read, as the model's owner would; only what differs (idempotent).

        A fact that loosens the gate (a fairness threshold above the default) waits for a compliance
        officer, who approves it here, as the demo's compliance officer would.
        """
        changes = {field: value for field, value in facts.items() if getattr(model, field) != value}
        if not changes:
            return
        with transaction.atomic():
            result = registry.model_update(
                actor=actor, name=model.name, changes=changes, reason="Facts recorded by the team"
            )
            if result.facts_change is not None:
                registry.facts_change_approve(
                    actor=approver,
                    change_id=result.facts_change.public_id,
                    reason="Reviewed with the team's fairness assessment",
                )

    def _dataset(
        self, name: str, data, team: Team, actor: Principal, predictions=None, description: str = ""
    ) -> Dataset:
        existing = Dataset.objects.filter(name=name, owner_team=team).first()
        if existing is not None:
            return existing
        return registry.dataset_create(
            actor=actor,
            name=name,
            owner_team=team,
            file=io.BytesIO(data.csv_bytes(predictions)),
            format="csv",
            schema=data.schema(with_prediction=predictions is not None),
            description=description or f"Synthetic {name.replace('-', ' ')} data ({len(data.y)} rows)",
        )

    def _customers(self, actor: Principal, team: Team) -> Dataset:
        """A customer table with PII in structured and free-text columns, for the PII scan and its scrub."""
        existing = Dataset.objects.filter(name=CUSTOMERS, owner_team=team).first()
        if existing is not None:
            return existing
        table, _ = customers.customer_table(CUSTOMER_ROWS, seed=7)
        out = io.BytesIO()
        pacsv.write_csv(table, out)
        return registry.dataset_create(
            actor=actor,
            name=CUSTOMERS,
            owner_team=team,
            file=io.BytesIO(out.getvalue()),
            format="csv",
            schema=customers.column_schema(),
            description=f"Synthetic customer records with personal data ({CUSTOMER_ROWS} rows): names, e-mails, "
            "phones, addresses, birth dates, card numbers, IBANs and free-text notes",
        )

    def _print_logins(self, password: str) -> None:
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {password})")
        for username, full_name, role, scope_team, _ in PEOPLE:
            scope = f"on team {scope_team}" if scope_team else "everywhere"
            self.stdout.write(f"  {username:<8} {full_name:<18} {role} {scope}")
        self.stdout.write(
            "  CI service account 'ci-credit' (owner alice): manage.py token_create --service-account ci-credit"
        )
