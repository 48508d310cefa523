import factory

from apps.registry.choices import ArtifactFormat, DatasetFormat, RiskTier, VersionStatus
from apps.registry.models import Dataset, ModelVersion, RegisteredModel

from .accounts import TeamFactory


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RegisteredModel

    name = factory.Sequence(lambda n: f"model-{n}")
    owner_team = factory.SubFactory(TeamFactory)
    description = "A model under test"
    risk_tier = RiskTier.LIMITED
    data_categories = factory.LazyFunction(lambda: ["personal"])


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    owner_team = factory.SubFactory(TeamFactory)
    uri = factory.Sequence(lambda n: f"datasets/{n:032x}")
    format = DatasetFormat.CSV
    schema = factory.LazyFunction(lambda: [{"name": "x", "type": "double", "role": "feature"}])


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    number = factory.Sequence(lambda n: n + 1)
    status = VersionStatus.READY
    format = ArtifactFormat.ONNX
    artifact_uri = factory.Sequence(lambda n: f"artifacts/{n:032x}")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    size = 1024
