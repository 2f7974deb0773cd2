import pytest

from models.architectures import build
from models.specs import RECIPES


def test_lenet5_has_the_courses_parameter_count():
    assert build("lenet5").count_params() == 44_426


@pytest.mark.parametrize("version", sorted(RECIPES))
def test_every_recipe_builds_a_ten_class_softmax(version):
    model = build(RECIPES[version].architecture)
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet")
