# Generated from schemas/*.schema.json by `make schemas` (fastjsonschema 2.22.3).
# Do not edit: change a schema, then run `make schemas`; a test fails while this file is stale.
# ruff: noqa
SCHEMAS_DIGEST = '2ece9459bc19067bffb0cc6487b362f3830eaa64ef1a86a87264d15ee3017548'

VERSION = "2.22.3"
from decimal import Decimal
import re
from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException


REGEX_PATTERNS = {
    '\\S': re.compile('\\S'),
    '^(?:(?:[0-9]+[smhd])+|(?:[01]?[0-9]|2[0-3]):[0-5][0-9])$': re.compile('^(?:(?:[0-9]+[smhd])+|(?:[01]?[0-9]|2[0-3]):[0-5][0-9])\\Z'),
    '^https?://[^\\s]+$': re.compile('^https?://[^\\s]+\\Z'),
    '^x-': re.compile('^x-'),
    '^[A-Za-z_][A-Za-z0-9_]*$': re.compile('^[A-Za-z_][A-Za-z0-9_]*\\Z'),
    '^[A-Za-z0-9._-]{1,64}$': re.compile('^[A-Za-z0-9._-]{1,64}\\Z')
}

NoneType = type(None)

def validate(data, custom_formats={}, name_prefix=None):
    data_any_of_count1 = 0
    if not data_any_of_count1:
        try:
            validate_https___flux_batch_local_schemas_manifest_schema_json(data, custom_formats, (name_prefix or "data") + "")
            data_any_of_count1 += 1
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
    if not data_any_of_count1:
        try:
            validate_https___flux_batch_local_schemas_manifest_schema_json___defs_run(data, custom_formats, (name_prefix or "data") + "")
            data_any_of_count1 += 1
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
    if not data_any_of_count1:
        try:
            validate_https___flux_batch_local_schemas_prompt_object_schema_json(data, custom_formats, (name_prefix or "data") + "")
            data_any_of_count1 += 1
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
    if not data_any_of_count1:
        try:
            validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields(data, custom_formats, (name_prefix or "data") + "")
            data_any_of_count1 += 1
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
    if not data_any_of_count1:
        try:
            validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_prompt(data, custom_formats, (name_prefix or "data") + "")
            data_any_of_count1 += 1
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
    if not data_any_of_count1:
        try:
            validate_https___flux_batch_local_schemas_ai_record_schema_json(data, custom_formats, (name_prefix or "data") + "")
            data_any_of_count1 += 1
        except (JsonSchemaValueException, JsonSchemaValuesException): pass
    if not data_any_of_count1:
        raise JsonSchemaValueException("" + (name_prefix or "data") + " cannot be validated by any definition", value=data, name="" + (name_prefix or "data") + "", rule='anyOf')
    return data

def validate_https___flux_batch_local_schemas_ai_record_schema_json(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['aiRecord']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
        data_keys = set(data.keys())
        if "aiRecord" in data_keys:
            data_keys.remove("aiRecord")
            data__aiRecord = data["aiRecord"]
            validate_https___flux_batch_local_schemas_ai_record_schema_json___defs_airecord(data__aiRecord, custom_formats, (name_prefix or "data") + ".aiRecord")
        if "temporaryUrl" in data_keys:
            data_keys.remove("temporaryUrl")
            data__temporaryUrl = data["temporaryUrl"]
            if not isinstance(data__temporaryUrl, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".temporaryUrl must be string", value=data__temporaryUrl, name="" + (name_prefix or "data") + ".temporaryUrl", rule='type')
            if isinstance(data__temporaryUrl, str):
                data__temporaryUrl_len = len(data__temporaryUrl)
                if data__temporaryUrl_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".temporaryUrl must be longer than or equal to 1 characters", value=data__temporaryUrl, name="" + (name_prefix or "data") + ".temporaryUrl", rule='minLength')
    return data

def validate_https___flux_batch_local_schemas_ai_record_schema_json___defs_airecord(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['uuid', 'status', 'aiRecordDetail']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
        data_keys = set(data.keys())
        if "uuid" in data_keys:
            data_keys.remove("uuid")
            data__uuid = data["uuid"]
            if not isinstance(data__uuid, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".uuid must be string", value=data__uuid, name="" + (name_prefix or "data") + ".uuid", rule='type')
            if isinstance(data__uuid, str):
                data__uuid_len = len(data__uuid)
                if data__uuid_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".uuid must be longer than or equal to 1 characters", value=data__uuid, name="" + (name_prefix or "data") + ".uuid", rule='minLength')
        if "model" in data_keys:
            data_keys.remove("model")
            data__model = data["model"]
            if not isinstance(data__model, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".model must be string", value=data__model, name="" + (name_prefix or "data") + ".model", rule='type')
        if "type" in data_keys:
            data_keys.remove("type")
            data__type = data["type"]
            if not isinstance(data__type, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".type must be string", value=data__type, name="" + (name_prefix or "data") + ".type", rule='type')
        if "status" in data_keys:
            data_keys.remove("status")
            data__status = data["status"]
            if not (isinstance(data__status, str) and data__status == 'SUCCESS' or isinstance(data__status, str) and data__status == 'PROCESSING' or isinstance(data__status, str) and data__status == 'FAILURE' or isinstance(data__status, str) and data__status == 'PENDING'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".status must be one of ['SUCCESS', 'PROCESSING', 'FAILURE', 'PENDING']", value=data__status, name="" + (name_prefix or "data") + ".status", rule='enum')
        if "createdAt" in data_keys:
            data_keys.remove("createdAt")
            data__createdAt = data["createdAt"]
            if not isinstance(data__createdAt, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".createdAt must be string", value=data__createdAt, name="" + (name_prefix or "data") + ".createdAt", rule='type')
        if "temporaryUrl" in data_keys:
            data_keys.remove("temporaryUrl")
            data__temporaryUrl = data["temporaryUrl"]
            if not isinstance(data__temporaryUrl, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".temporaryUrl must be string", value=data__temporaryUrl, name="" + (name_prefix or "data") + ".temporaryUrl", rule='type')
            if isinstance(data__temporaryUrl, str):
                data__temporaryUrl_len = len(data__temporaryUrl)
                if data__temporaryUrl_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".temporaryUrl must be longer than or equal to 1 characters", value=data__temporaryUrl, name="" + (name_prefix or "data") + ".temporaryUrl", rule='minLength')
        if "aiRecordDetail" in data_keys:
            data_keys.remove("aiRecordDetail")
            data__aiRecordDetail = data["aiRecordDetail"]
            if not isinstance(data__aiRecordDetail, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail must be object", value=data__aiRecordDetail, name="" + (name_prefix or "data") + ".aiRecordDetail", rule='type')
            data__aiRecordDetail_is_dict = isinstance(data__aiRecordDetail, dict)
            if data__aiRecordDetail_is_dict:
                data__aiRecordDetail_keys = set(data__aiRecordDetail.keys())
                if "promptObject" in data__aiRecordDetail_keys:
                    data__aiRecordDetail_keys.remove("promptObject")
                    data__aiRecordDetail__promptObject = data__aiRecordDetail["promptObject"]
                    if not isinstance(data__aiRecordDetail__promptObject, (dict)):
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail.promptObject must be object", value=data__aiRecordDetail__promptObject, name="" + (name_prefix or "data") + ".aiRecordDetail.promptObject", rule='type')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "status" in data_keys:
                data_keys.remove("status")
                data__status = data["status"]
                if not (isinstance(data__status, str) and data__status == 'SUCCESS'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".status must be same as const definition: SUCCESS", value=data__status, name="" + (name_prefix or "data") + ".status", rule='const')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        pass
    else:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "aiRecordDetail" in data_keys:
                data_keys.remove("aiRecordDetail")
                data__aiRecordDetail = data["aiRecordDetail"]
                data__aiRecordDetail_is_dict = isinstance(data__aiRecordDetail, dict)
                if data__aiRecordDetail_is_dict:
                    data__aiRecordDetail__missing_keys = set(['resultObject']) - data__aiRecordDetail.keys()
                    if data__aiRecordDetail__missing_keys:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail must contain " + (str(sorted(data__aiRecordDetail__missing_keys)) + " properties"), value=data__aiRecordDetail, name="" + (name_prefix or "data") + ".aiRecordDetail", rule='required')
                    data__aiRecordDetail_keys = set(data__aiRecordDetail.keys())
                    if "resultObject" in data__aiRecordDetail_keys:
                        data__aiRecordDetail_keys.remove("resultObject")
                        data__aiRecordDetail__resultObject = data__aiRecordDetail["resultObject"]
                        if not isinstance(data__aiRecordDetail__resultObject, (list, tuple)):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail.resultObject must be array", value=data__aiRecordDetail__resultObject, name="" + (name_prefix or "data") + ".aiRecordDetail.resultObject", rule='type')
                        data__aiRecordDetail__resultObject_is_list = isinstance(data__aiRecordDetail__resultObject, (list, tuple))
                        if data__aiRecordDetail__resultObject_is_list:
                            data__aiRecordDetail__resultObject_len = len(data__aiRecordDetail__resultObject)
                            if data__aiRecordDetail__resultObject_len < 1:
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail.resultObject must contain at least 1 items", value=data__aiRecordDetail__resultObject, name="" + (name_prefix or "data") + ".aiRecordDetail.resultObject", rule='minItems')
                            for data__aiRecordDetail__resultObject_x, data__aiRecordDetail__resultObject_item in enumerate(data__aiRecordDetail__resultObject):
                                if not isinstance(data__aiRecordDetail__resultObject_item, (str)):
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail.resultObject[{data__aiRecordDetail__resultObject_x}]".format(**locals()) + " must be string", value=data__aiRecordDetail__resultObject_item, name="" + (name_prefix or "data") + ".aiRecordDetail.resultObject[{data__aiRecordDetail__resultObject_x}]".format(**locals()) + "", rule='type')
                                if isinstance(data__aiRecordDetail__resultObject_item, str):
                                    data__aiRecordDetail__resultObject_item_len = len(data__aiRecordDetail__resultObject_item)
                                    if data__aiRecordDetail__resultObject_item_len < 1:
                                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".aiRecordDetail.resultObject[{data__aiRecordDetail__resultObject_x}]".format(**locals()) + " must be longer than or equal to 1 characters", value=data__aiRecordDetail__resultObject_item, name="" + (name_prefix or "data") + ".aiRecordDetail.resultObject[{data__aiRecordDetail__resultObject_x}]".format(**locals()) + "", rule='minLength')
    return data

def validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_prompt(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", rule='type')
    if isinstance(data, str):
        if not REGEX_PATTERNS['\\S'].search(data):
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must match pattern \\S", value=data, name="" + (name_prefix or "data") + "", rule='pattern')
        data_len = len(data)
        if data_len > 10000:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must be shorter than or equal to 10000 characters", value=data, name="" + (name_prefix or "data") + "", rule='maxLength')
    return data

def validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data_keys = set(data.keys())
        if "prompt" in data_keys:
            data_keys.remove("prompt")
            data__prompt = data["prompt"]
            if not isinstance(data__prompt, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompt must be string", value=data__prompt, name="" + (name_prefix or "data") + ".prompt", rule='type')
            if isinstance(data__prompt, str):
                if not REGEX_PATTERNS['\\S'].search(data__prompt):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompt must match pattern \\S", value=data__prompt, name="" + (name_prefix or "data") + ".prompt", rule='pattern')
                data__prompt_len = len(data__prompt)
                if data__prompt_len > 10000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompt must be shorter than or equal to 10000 characters", value=data__prompt, name="" + (name_prefix or "data") + ".prompt", rule='maxLength')
        if "image_prompt" in data_keys:
            data_keys.remove("image_prompt")
            data__imageprompt = data["image_prompt"]
            if not isinstance(data__imageprompt, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".image_prompt must be string", value=data__imageprompt, name="" + (name_prefix or "data") + ".image_prompt", rule='type')
            if isinstance(data__imageprompt, str):
                data__imageprompt_len = len(data__imageprompt)
                if data__imageprompt_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".image_prompt must be longer than or equal to 1 characters", value=data__imageprompt, name="" + (name_prefix or "data") + ".image_prompt", rule='minLength')
        if "aspect_ratio" in data_keys:
            data_keys.remove("aspect_ratio")
            data__aspectratio = data["aspect_ratio"]
            if not isinstance(data__aspectratio, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".aspect_ratio must be string", value=data__aspectratio, name="" + (name_prefix or "data") + ".aspect_ratio", rule='type')
            if not (isinstance(data__aspectratio, str) and data__aspectratio == '1:1' or isinstance(data__aspectratio, str) and data__aspectratio == '16:9' or isinstance(data__aspectratio, str) and data__aspectratio == '9:16' or isinstance(data__aspectratio, str) and data__aspectratio == '3:2' or isinstance(data__aspectratio, str) and data__aspectratio == '2:3' or isinstance(data__aspectratio, str) and data__aspectratio == '4:5' or isinstance(data__aspectratio, str) and data__aspectratio == '5:4' or isinstance(data__aspectratio, str) and data__aspectratio == 'custom'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".aspect_ratio must be one of ['1:1', '16:9', '9:16', '3:2', '2:3', '4:5', '5:4', 'custom']", value=data__aspectratio, name="" + (name_prefix or "data") + ".aspect_ratio", rule='enum')
        if "width" in data_keys:
            data_keys.remove("width")
            data__width = data["width"]
            if not isinstance(data__width, (int)) and not (isinstance(data__width, float) and data__width.is_integer()) or isinstance(data__width, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".width must be integer", value=data__width, name="" + (name_prefix or "data") + ".width", rule='type')
            if isinstance(data__width, (int, float, Decimal)) and not isinstance(data__width, bool):
                if data__width < 256:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".width must be bigger than or equal to 256", value=data__width, name="" + (name_prefix or "data") + ".width", rule='minimum')
                if data__width > 1440:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".width must be smaller than or equal to 1440", value=data__width, name="" + (name_prefix or "data") + ".width", rule='maximum')
                if isinstance(data__width, int) and isinstance(32, int):
                    if data__width % 32 != 0:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".width must be multiple of 32", value=data__width, name="" + (name_prefix or "data") + ".width", rule='multipleOf')
                else:
                    quotient = data__width / 32
                    if int(quotient) != quotient:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".width must be multiple of 32", value=data__width, name="" + (name_prefix or "data") + ".width", rule='multipleOf')
                    if data__width / 32 == float("inf"):
                        raise JsonSchemaValueException("inifinity reached", value=data__width, name="" + (name_prefix or "data") + ".width", rule='multipleOf')
        if "height" in data_keys:
            data_keys.remove("height")
            data__height = data["height"]
            if not isinstance(data__height, (int)) and not (isinstance(data__height, float) and data__height.is_integer()) or isinstance(data__height, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".height must be integer", value=data__height, name="" + (name_prefix or "data") + ".height", rule='type')
            if isinstance(data__height, (int, float, Decimal)) and not isinstance(data__height, bool):
                if data__height < 256:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".height must be bigger than or equal to 256", value=data__height, name="" + (name_prefix or "data") + ".height", rule='minimum')
                if data__height > 1440:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".height must be smaller than or equal to 1440", value=data__height, name="" + (name_prefix or "data") + ".height", rule='maximum')
                if isinstance(data__height, int) and isinstance(32, int):
                    if data__height % 32 != 0:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".height must be multiple of 32", value=data__height, name="" + (name_prefix or "data") + ".height", rule='multipleOf')
                else:
                    quotient = data__height / 32
                    if int(quotient) != quotient:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".height must be multiple of 32", value=data__height, name="" + (name_prefix or "data") + ".height", rule='multipleOf')
                    if data__height / 32 == float("inf"):
                        raise JsonSchemaValueException("inifinity reached", value=data__height, name="" + (name_prefix or "data") + ".height", rule='multipleOf')
        if "prompt_strength" in data_keys:
            data_keys.remove("prompt_strength")
            data__promptstrength = data["prompt_strength"]
            if not isinstance(data__promptstrength, (int, float, Decimal)) or isinstance(data__promptstrength, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompt_strength must be number", value=data__promptstrength, name="" + (name_prefix or "data") + ".prompt_strength", rule='type')
            if isinstance(data__promptstrength, (int, float, Decimal)) and not isinstance(data__promptstrength, bool):
                if data__promptstrength < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompt_strength must be bigger than or equal to 0", value=data__promptstrength, name="" + (name_prefix or "data") + ".prompt_strength", rule='minimum')
                if data__promptstrength > 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompt_strength must be smaller than or equal to 1", value=data__promptstrength, name="" + (name_prefix or "data") + ".prompt_strength", rule='maximum')
        if "num_inference_steps" in data_keys:
            data_keys.remove("num_inference_steps")
            data__numinferencesteps = data["num_inference_steps"]
            if not isinstance(data__numinferencesteps, (int)) and not (isinstance(data__numinferencesteps, float) and data__numinferencesteps.is_integer()) or isinstance(data__numinferencesteps, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".num_inference_steps must be integer", value=data__numinferencesteps, name="" + (name_prefix or "data") + ".num_inference_steps", rule='type')
            if isinstance(data__numinferencesteps, (int, float, Decimal)) and not isinstance(data__numinferencesteps, bool):
                if data__numinferencesteps < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".num_inference_steps must be bigger than or equal to 1", value=data__numinferencesteps, name="" + (name_prefix or "data") + ".num_inference_steps", rule='minimum')
                if data__numinferencesteps > 50:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".num_inference_steps must be smaller than or equal to 50", value=data__numinferencesteps, name="" + (name_prefix or "data") + ".num_inference_steps", rule='maximum')
        if "guidance" in data_keys:
            data_keys.remove("guidance")
            data__guidance = data["guidance"]
            if not isinstance(data__guidance, (int, float, Decimal)) or isinstance(data__guidance, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".guidance must be number", value=data__guidance, name="" + (name_prefix or "data") + ".guidance", rule='type')
            if isinstance(data__guidance, (int, float, Decimal)) and not isinstance(data__guidance, bool):
                if data__guidance < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".guidance must be bigger than or equal to 0", value=data__guidance, name="" + (name_prefix or "data") + ".guidance", rule='minimum')
                if data__guidance > 50:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".guidance must be smaller than or equal to 50", value=data__guidance, name="" + (name_prefix or "data") + ".guidance", rule='maximum')
        if "seed" in data_keys:
            data_keys.remove("seed")
            data__seed = data["seed"]
            if not isinstance(data__seed, (int)) and not (isinstance(data__seed, float) and data__seed.is_integer()) or isinstance(data__seed, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".seed must be integer", value=data__seed, name="" + (name_prefix or "data") + ".seed", rule='type')
            if isinstance(data__seed, (int, float, Decimal)) and not isinstance(data__seed, bool):
                if data__seed < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".seed must be bigger than or equal to 0", value=data__seed, name="" + (name_prefix or "data") + ".seed", rule='minimum')
                if data__seed > 4294967295:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".seed must be smaller than or equal to 4294967295", value=data__seed, name="" + (name_prefix or "data") + ".seed", rule='maximum')
        if "output_quality" in data_keys:
            data_keys.remove("output_quality")
            data__outputquality = data["output_quality"]
            if not isinstance(data__outputquality, (int)) and not (isinstance(data__outputquality, float) and data__outputquality.is_integer()) or isinstance(data__outputquality, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".output_quality must be integer", value=data__outputquality, name="" + (name_prefix or "data") + ".output_quality", rule='type')
            if isinstance(data__outputquality, (int, float, Decimal)) and not isinstance(data__outputquality, bool):
                if data__outputquality < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".output_quality must be bigger than or equal to 0", value=data__outputquality, name="" + (name_prefix or "data") + ".output_quality", rule='minimum')
                if data__outputquality > 100:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".output_quality must be smaller than or equal to 100", value=data__outputquality, name="" + (name_prefix or "data") + ".output_quality", rule='maximum')
        if "disable_safety_checker" in data_keys:
            data_keys.remove("disable_safety_checker")
            data__disablesafetychecker = data["disable_safety_checker"]
            if not isinstance(data__disablesafetychecker, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".disable_safety_checker must be boolean", value=data__disablesafetychecker, name="" + (name_prefix or "data") + ".disable_safety_checker", rule='type')
        if "go_fast" in data_keys:
            data_keys.remove("go_fast")
            data__gofast = data["go_fast"]
            if not isinstance(data__gofast, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".go_fast must be boolean", value=data__gofast, name="" + (name_prefix or "data") + ".go_fast", rule='type')
        if "megapixels" in data_keys:
            data_keys.remove("megapixels")
            data__megapixels = data["megapixels"]
            if not isinstance(data__megapixels, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".megapixels must be string", value=data__megapixels, name="" + (name_prefix or "data") + ".megapixels", rule='type')
            if not (isinstance(data__megapixels, str) and data__megapixels == '0.25' or isinstance(data__megapixels, str) and data__megapixels == '1' or isinstance(data__megapixels, str) and data__megapixels == '2'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".megapixels must be one of ['0.25', '1', '2']", value=data__megapixels, name="" + (name_prefix or "data") + ".megapixels", rule='enum')
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", rule='additionalProperties')
    return data

def validate_https___flux_batch_local_schemas_prompt_object_schema_json(data, custom_formats={}, name_prefix=None):
    validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields(data, custom_formats, (name_prefix or "data") + "")
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['prompt']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
    try:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data__missing_keys = set(['aspect_ratio']) - data.keys()
            if data__missing_keys:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
            data_keys = set(data.keys())
            if "aspect_ratio" in data_keys:
                data_keys.remove("aspect_ratio")
                data__aspectratio = data["aspect_ratio"]
                if not (isinstance(data__aspectratio, str) and data__aspectratio == 'custom'):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".aspect_ratio must be same as const definition: custom", value=data__aspectratio, name="" + (name_prefix or "data") + ".aspect_ratio", rule='const')
    except (JsonSchemaValueException, JsonSchemaValuesException):
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data_keys = set(data.keys())
            if "width" in data_keys:
                data_keys.remove("width")
                data__width = data["width"]
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".width must NOT match a disallowed definition", value=data__width, name="" + (name_prefix or "data") + ".width", rule='not')
            if "height" in data_keys:
                data_keys.remove("height")
                data__height = data["height"]
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".height must NOT match a disallowed definition", value=data__height, name="" + (name_prefix or "data") + ".height", rule='not')
    else:
        data_is_dict = isinstance(data, dict)
        if data_is_dict:
            data__missing_keys = set(['width', 'height']) - data.keys()
            if data__missing_keys:
                raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
    return data

def validate_https___flux_batch_local_schemas_manifest_schema_json___defs_run(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data_keys = set(data.keys())
        if "out" in data_keys:
            data_keys.remove("out")
            data__out = data["out"]
            if not isinstance(data__out, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".out must be string", value=data__out, name="" + (name_prefix or "data") + ".out", rule='type')
            if isinstance(data__out, str):
                data__out_len = len(data__out)
                if data__out_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".out must be longer than or equal to 1 characters", value=data__out, name="" + (name_prefix or "data") + ".out", rule='minLength')
        if "concurrency" in data_keys:
            data_keys.remove("concurrency")
            data__concurrency = data["concurrency"]
            if not isinstance(data__concurrency, (int)) and not (isinstance(data__concurrency, float) and data__concurrency.is_integer()) or isinstance(data__concurrency, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".concurrency must be integer", value=data__concurrency, name="" + (name_prefix or "data") + ".concurrency", rule='type')
            if isinstance(data__concurrency, (int, float, Decimal)) and not isinstance(data__concurrency, bool):
                if data__concurrency < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".concurrency must be bigger than or equal to 1", value=data__concurrency, name="" + (name_prefix or "data") + ".concurrency", rule='minimum')
                if data__concurrency > 1024:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".concurrency must be smaller than or equal to 1024", value=data__concurrency, name="" + (name_prefix or "data") + ".concurrency", rule='maximum')
        if "requests_per_minute" in data_keys:
            data_keys.remove("requests_per_minute")
            data__requestsperminute = data["requests_per_minute"]
            if not isinstance(data__requestsperminute, (int, float, Decimal)) or isinstance(data__requestsperminute, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".requests_per_minute must be number", value=data__requestsperminute, name="" + (name_prefix or "data") + ".requests_per_minute", rule='type')
            if isinstance(data__requestsperminute, (int, float, Decimal)) and not isinstance(data__requestsperminute, bool):
                if data__requestsperminute > 1000000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".requests_per_minute must be smaller than or equal to 1000000", value=data__requestsperminute, name="" + (name_prefix or "data") + ".requests_per_minute", rule='maximum')
                if data__requestsperminute <= 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".requests_per_minute must be bigger than 0", value=data__requestsperminute, name="" + (name_prefix or "data") + ".requests_per_minute", rule='exclusiveMinimum')
        if "max_attempts" in data_keys:
            data_keys.remove("max_attempts")
            data__maxattempts = data["max_attempts"]
            if not isinstance(data__maxattempts, (int)) and not (isinstance(data__maxattempts, float) and data__maxattempts.is_integer()) or isinstance(data__maxattempts, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_attempts must be integer", value=data__maxattempts, name="" + (name_prefix or "data") + ".max_attempts", rule='type')
            if isinstance(data__maxattempts, (int, float, Decimal)) and not isinstance(data__maxattempts, bool):
                if data__maxattempts < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_attempts must be bigger than or equal to 1", value=data__maxattempts, name="" + (name_prefix or "data") + ".max_attempts", rule='minimum')
                if data__maxattempts > 100:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_attempts must be smaller than or equal to 100", value=data__maxattempts, name="" + (name_prefix or "data") + ".max_attempts", rule='maximum')
        if "request_timeout" in data_keys:
            data_keys.remove("request_timeout")
            data__requesttimeout = data["request_timeout"]
            if not isinstance(data__requesttimeout, (int, float, Decimal)) or isinstance(data__requesttimeout, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".request_timeout must be number", value=data__requesttimeout, name="" + (name_prefix or "data") + ".request_timeout", rule='type')
            if isinstance(data__requesttimeout, (int, float, Decimal)) and not isinstance(data__requesttimeout, bool):
                if data__requesttimeout > 3600:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".request_timeout must be smaller than or equal to 3600", value=data__requesttimeout, name="" + (name_prefix or "data") + ".request_timeout", rule='maximum')
                if data__requesttimeout <= 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".request_timeout must be bigger than 0", value=data__requesttimeout, name="" + (name_prefix or "data") + ".request_timeout", rule='exclusiveMinimum')
        if "max_jobs" in data_keys:
            data_keys.remove("max_jobs")
            data__maxjobs = data["max_jobs"]
            if not isinstance(data__maxjobs, (int)) and not (isinstance(data__maxjobs, float) and data__maxjobs.is_integer()) or isinstance(data__maxjobs, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_jobs must be integer", value=data__maxjobs, name="" + (name_prefix or "data") + ".max_jobs", rule='type')
            if isinstance(data__maxjobs, (int, float, Decimal)) and not isinstance(data__maxjobs, bool):
                if data__maxjobs < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_jobs must be bigger than or equal to 1", value=data__maxjobs, name="" + (name_prefix or "data") + ".max_jobs", rule='minimum')
                if data__maxjobs > 1000000000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_jobs must be smaller than or equal to 1000000000", value=data__maxjobs, name="" + (name_prefix or "data") + ".max_jobs", rule='maximum')
        if "deadline" in data_keys:
            data_keys.remove("deadline")
            data__deadline = data["deadline"]
            if not isinstance(data__deadline, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".deadline must be string", value=data__deadline, name="" + (name_prefix or "data") + ".deadline", rule='type')
            if isinstance(data__deadline, str):
                if not REGEX_PATTERNS['^(?:(?:[0-9]+[smhd])+|(?:[01]?[0-9]|2[0-3]):[0-5][0-9])$'].search(data__deadline):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".deadline must match pattern ^(?:(?:[0-9]+[smhd])+|(?:[01]?[0-9]|2[0-3]):[0-5][0-9])$", value=data__deadline, name="" + (name_prefix or "data") + ".deadline", rule='pattern')
        if "order" in data_keys:
            data_keys.remove("order")
            data__order = data["order"]
            if not (isinstance(data__order, str) and data__order == 'manifest' or isinstance(data__order, str) and data__order == 'interleave' or isinstance(data__order, str) and data__order == 'shuffle'):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".order must be one of ['manifest', 'interleave', 'shuffle']", value=data__order, name="" + (name_prefix or "data") + ".order", rule='enum')
        if "credits_per_image" in data_keys:
            data_keys.remove("credits_per_image")
            data__creditsperimage = data["credits_per_image"]
            if not isinstance(data__creditsperimage, (int, float, Decimal)) or isinstance(data__creditsperimage, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".credits_per_image must be number", value=data__creditsperimage, name="" + (name_prefix or "data") + ".credits_per_image", rule='type')
            if isinstance(data__creditsperimage, (int, float, Decimal)) and not isinstance(data__creditsperimage, bool):
                if data__creditsperimage < 1e-06:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".credits_per_image must be bigger than or equal to 1e-06", value=data__creditsperimage, name="" + (name_prefix or "data") + ".credits_per_image", rule='minimum')
                if data__creditsperimage > 1000000000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".credits_per_image must be smaller than or equal to 1000000000", value=data__creditsperimage, name="" + (name_prefix or "data") + ".credits_per_image", rule='maximum')
        if "max_credits" in data_keys:
            data_keys.remove("max_credits")
            data__maxcredits = data["max_credits"]
            if not isinstance(data__maxcredits, (int, float, Decimal)) or isinstance(data__maxcredits, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_credits must be number", value=data__maxcredits, name="" + (name_prefix or "data") + ".max_credits", rule='type')
            if isinstance(data__maxcredits, (int, float, Decimal)) and not isinstance(data__maxcredits, bool):
                if data__maxcredits > 1000000000000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_credits must be smaller than or equal to 1000000000000", value=data__maxcredits, name="" + (name_prefix or "data") + ".max_credits", rule='maximum')
                if data__maxcredits <= 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".max_credits must be bigger than 0", value=data__maxcredits, name="" + (name_prefix or "data") + ".max_credits", rule='exclusiveMinimum')
        if "on_finish" in data_keys:
            data_keys.remove("on_finish")
            data__onfinish = data["on_finish"]
            if not isinstance(data__onfinish, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".on_finish must be string", value=data__onfinish, name="" + (name_prefix or "data") + ".on_finish", rule='type')
            if isinstance(data__onfinish, str):
                data__onfinish_len = len(data__onfinish)
                if data__onfinish_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".on_finish must be longer than or equal to 1 characters", value=data__onfinish, name="" + (name_prefix or "data") + ".on_finish", rule='minLength')
        if "report" in data_keys:
            data_keys.remove("report")
            data__report = data["report"]
            if not isinstance(data__report, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".report must be boolean", value=data__report, name="" + (name_prefix or "data") + ".report", rule='type')
        if "retry_failed" in data_keys:
            data_keys.remove("retry_failed")
            data__retryfailed = data["retry_failed"]
            if not isinstance(data__retryfailed, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".retry_failed must be boolean", value=data__retryfailed, name="" + (name_prefix or "data") + ".retry_failed", rule='type')
        if "priority" in data_keys:
            data_keys.remove("priority")
            data__priority = data["priority"]
            if not isinstance(data__priority, (int)) and not (isinstance(data__priority, float) and data__priority.is_integer()) or isinstance(data__priority, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".priority must be integer", value=data__priority, name="" + (name_prefix or "data") + ".priority", rule='type')
            if isinstance(data__priority, (int, float, Decimal)) and not isinstance(data__priority, bool):
                if data__priority < -1000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".priority must be bigger than or equal to -1000", value=data__priority, name="" + (name_prefix or "data") + ".priority", rule='minimum')
                if data__priority > 1000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".priority must be smaller than or equal to 1000", value=data__priority, name="" + (name_prefix or "data") + ".priority", rule='maximum')
        if "async_mode" in data_keys:
            data_keys.remove("async_mode")
            data__asyncmode = data["async_mode"]
            if not isinstance(data__asyncmode, (bool)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".async_mode must be boolean", value=data__asyncmode, name="" + (name_prefix or "data") + ".async_mode", rule='type')
        if "base_url" in data_keys:
            data_keys.remove("base_url")
            data__baseurl = data["base_url"]
            if not isinstance(data__baseurl, (str)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".base_url must be string", value=data__baseurl, name="" + (name_prefix or "data") + ".base_url", rule='type')
            if isinstance(data__baseurl, str):
                if not REGEX_PATTERNS['^https?://[^\\s]+$'].search(data__baseurl):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".base_url must match pattern ^https?://[^\\s]+$", value=data__baseurl, name="" + (name_prefix or "data") + ".base_url", rule='pattern')
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", rule='additionalProperties')
    return data

def validate_https___flux_batch_local_schemas_manifest_schema_json(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['version', 'name', 'prompts']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
        data_keys = set(data.keys())
        if "version" in data_keys:
            data_keys.remove("version")
            data__version = data["version"]
            if not (isinstance(data__version, (int, float)) and not isinstance(data__version, bool) and data__version == 1):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".version must be same as const definition: 1", value=data__version, name="" + (name_prefix or "data") + ".version", rule='const')
        if "name" in data_keys:
            data_keys.remove("name")
            data__name = data["name"]
            validate_https___flux_batch_local_schemas_manifest_schema_json___defs_safename(data__name, custom_formats, (name_prefix or "data") + ".name")
        if "defaults" in data_keys:
            data_keys.remove("defaults")
            data__defaults = data["defaults"]
            validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields(data__defaults, custom_formats, (name_prefix or "data") + ".defaults")
        if "prompts" in data_keys:
            data_keys.remove("prompts")
            data__prompts = data["prompts"]
            if not isinstance(data__prompts, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompts must be array", value=data__prompts, name="" + (name_prefix or "data") + ".prompts", rule='type')
            data__prompts_is_list = isinstance(data__prompts, (list, tuple))
            if data__prompts_is_list:
                data__prompts_len = len(data__prompts)
                if data__prompts_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".prompts must contain at least 1 items", value=data__prompts, name="" + (name_prefix or "data") + ".prompts", rule='minItems')
                for data__prompts_x, data__prompts_item in enumerate(data__prompts):
                    validate_https___flux_batch_local_schemas_manifest_schema_json___defs_prompt(data__prompts_item, custom_formats, (name_prefix or "data") + ".prompts[{data__prompts_x}]".format(**locals()))
        if "sweep" in data_keys:
            data_keys.remove("sweep")
            data__sweep = data["sweep"]
            validate_https___flux_batch_local_schemas_manifest_schema_json___defs_axes(data__sweep, custom_formats, (name_prefix or "data") + ".sweep")
        if "zip" in data_keys:
            data_keys.remove("zip")
            data__zip = data["zip"]
            validate_https___flux_batch_local_schemas_manifest_schema_json___defs_axes(data__zip, custom_formats, (name_prefix or "data") + ".zip")
        if "seeds" in data_keys:
            data_keys.remove("seeds")
            data__seeds = data["seeds"]
            if not isinstance(data__seeds, (list, tuple)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".seeds must be array", value=data__seeds, name="" + (name_prefix or "data") + ".seeds", rule='type')
            data__seeds_is_list = isinstance(data__seeds, (list, tuple))
            if data__seeds_is_list:
                data__seeds_len = len(data__seeds)
                if data__seeds_len < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".seeds must contain at least 1 items", value=data__seeds, name="" + (name_prefix or "data") + ".seeds", rule='minItems')
                for data__seeds_x, data__seeds_item in enumerate(data__seeds):
                    validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_seed(data__seeds_item, custom_formats, (name_prefix or "data") + ".seeds[{data__seeds_x}]".format(**locals()))
        if "repeats" in data_keys:
            data_keys.remove("repeats")
            data__repeats = data["repeats"]
            if not isinstance(data__repeats, (int)) and not (isinstance(data__repeats, float) and data__repeats.is_integer()) or isinstance(data__repeats, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".repeats must be integer", value=data__repeats, name="" + (name_prefix or "data") + ".repeats", rule='type')
            if isinstance(data__repeats, (int, float, Decimal)) and not isinstance(data__repeats, bool):
                if data__repeats < 1:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".repeats must be bigger than or equal to 1", value=data__repeats, name="" + (name_prefix or "data") + ".repeats", rule='minimum')
                if data__repeats > 10000:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".repeats must be smaller than or equal to 10000", value=data__repeats, name="" + (name_prefix or "data") + ".repeats", rule='maximum')
        if "seed_base" in data_keys:
            data_keys.remove("seed_base")
            data__seedbase = data["seed_base"]
            if not isinstance(data__seedbase, (int)) and not (isinstance(data__seedbase, float) and data__seedbase.is_integer()) or isinstance(data__seedbase, bool):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".seed_base must be integer", value=data__seedbase, name="" + (name_prefix or "data") + ".seed_base", rule='type')
            if isinstance(data__seedbase, (int, float, Decimal)) and not isinstance(data__seedbase, bool):
                if data__seedbase < 0:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".seed_base must be bigger than or equal to 0", value=data__seedbase, name="" + (name_prefix or "data") + ".seed_base", rule='minimum')
                if data__seedbase > 4294967295:
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".seed_base must be smaller than or equal to 4294967295", value=data__seedbase, name="" + (name_prefix or "data") + ".seed_base", rule='maximum')
        if "run" in data_keys:
            data_keys.remove("run")
            data__run = data["run"]
            validate_https___flux_batch_local_schemas_manifest_schema_json___defs_run(data__run, custom_formats, (name_prefix or "data") + ".run")
        for data_key, data_val in data.items():
            if REGEX_PATTERNS['^x-'].search(data_key):
                if data_key in data_keys:
                    data_keys.remove(data_key)
                pass
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", rule='additionalProperties')
    return data

def validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_seed(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (int)) and not (isinstance(data, float) and data.is_integer()) or isinstance(data, bool):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be integer", value=data, name="" + (name_prefix or "data") + "", rule='type')
    if isinstance(data, (int, float, Decimal)) and not isinstance(data, bool):
        if data < 0:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must be bigger than or equal to 0", value=data, name="" + (name_prefix or "data") + "", rule='minimum')
        if data > 4294967295:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must be smaller than or equal to 4294967295", value=data, name="" + (name_prefix or "data") + "", rule='maximum')
    return data

def validate_https___flux_batch_local_schemas_manifest_schema_json___defs_axes(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data_keys = set(data.keys())
        for data_key in data_keys:
            if data_key not in []:
                data_value = data.get(data_key)
                if not isinstance(data_value, (list, tuple)):
                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".{data_key}".format(**locals()) + " must be array", value=data_value, name="" + (name_prefix or "data") + ".{data_key}".format(**locals()) + "", rule='type')
                data_value_is_list = isinstance(data_value, (list, tuple))
                if data_value_is_list:
                    data_value_len = len(data_value)
                    if data_value_len < 1:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".{data_key}".format(**locals()) + " must contain at least 1 items", value=data_value, name="" + (name_prefix or "data") + ".{data_key}".format(**locals()) + "", rule='minItems')
    return data

def validate_https___flux_batch_local_schemas_manifest_schema_json___defs_prompt(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (dict)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be object", value=data, name="" + (name_prefix or "data") + "", rule='type')
    data_is_dict = isinstance(data, dict)
    if data_is_dict:
        data__missing_keys = set(['id', 'prompt']) - data.keys()
        if data__missing_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must contain " + (str(sorted(data__missing_keys)) + " properties"), value=data, name="" + (name_prefix or "data") + "", rule='required')
        data_keys = set(data.keys())
        if "id" in data_keys:
            data_keys.remove("id")
            data__id = data["id"]
            validate_https___flux_batch_local_schemas_manifest_schema_json___defs_safename(data__id, custom_formats, (name_prefix or "data") + ".id")
        if "prompt" in data_keys:
            data_keys.remove("prompt")
            data__prompt = data["prompt"]
            validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_prompt(data__prompt, custom_formats, (name_prefix or "data") + ".prompt")
        if "vars" in data_keys:
            data_keys.remove("vars")
            data__vars = data["vars"]
            if not isinstance(data__vars, (dict)):
                raise JsonSchemaValueException("" + (name_prefix or "data") + ".vars must be object", value=data__vars, name="" + (name_prefix or "data") + ".vars", rule='type')
            data__vars_is_dict = isinstance(data__vars, dict)
            if data__vars_is_dict:
                data__vars_keys = set(data__vars.keys())
                for data__vars_key in data__vars_keys:
                    if data__vars_key not in []:
                        data__vars_value = data__vars.get(data__vars_key)
                        if not isinstance(data__vars_value, (list, tuple)):
                            raise JsonSchemaValueException("" + (name_prefix or "data") + ".vars.{data__vars_key}".format(**locals()) + " must be array", value=data__vars_value, name="" + (name_prefix or "data") + ".vars.{data__vars_key}".format(**locals()) + "", rule='type')
                        data__vars_value_is_list = isinstance(data__vars_value, (list, tuple))
                        if data__vars_value_is_list:
                            data__vars_value_len = len(data__vars_value)
                            if data__vars_value_len < 1:
                                raise JsonSchemaValueException("" + (name_prefix or "data") + ".vars.{data__vars_key}".format(**locals()) + " must contain at least 1 items", value=data__vars_value, name="" + (name_prefix or "data") + ".vars.{data__vars_key}".format(**locals()) + "", rule='minItems')
                            for data__vars_value_x, data__vars_value_item in enumerate(data__vars_value):
                                if not isinstance(data__vars_value_item, (str, int, float, Decimal, bool)):
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".vars.{data__vars_key}[{data__vars_value_x}]".format(**locals()) + " must be string or number or boolean", value=data__vars_value_item, name="" + (name_prefix or "data") + ".vars.{data__vars_key}[{data__vars_value_x}]".format(**locals()) + "", rule='type')
                data__vars_len = len(data__vars)
                if data__vars_len != 0:
                    data__vars_property_names = True
                    for data__vars_key in data__vars:
                        try:
                            if isinstance(data__vars_key, str):
                                if not REGEX_PATTERNS['^[A-Za-z_][A-Za-z0-9_]*$'].search(data__vars_key):
                                    raise JsonSchemaValueException("" + (name_prefix or "data") + ".vars must match pattern ^[A-Za-z_][A-Za-z0-9_]*$", value=data__vars_key, name="" + (name_prefix or "data") + ".vars", rule='pattern')
                        except (JsonSchemaValueException, JsonSchemaValuesException):
                            data__vars_property_names = False
                    if not data__vars_property_names:
                        raise JsonSchemaValueException("" + (name_prefix or "data") + ".vars must be named by propertyName definition", value=data__vars, name="" + (name_prefix or "data") + ".vars", rule='propertyNames')
        if "params" in data_keys:
            data_keys.remove("params")
            data__params = data["params"]
            validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields(data__params, custom_formats, (name_prefix or "data") + ".params")
        if "image_prompt" in data_keys:
            data_keys.remove("image_prompt")
            data__imageprompt = data["image_prompt"]
            validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_image_prompt(data__imageprompt, custom_formats, (name_prefix or "data") + ".image_prompt")
        if data_keys:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must not contain "+str(data_keys)+" properties", value=data, name="" + (name_prefix or "data") + "", rule='additionalProperties')
    return data

def validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_image_prompt(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", rule='type')
    if isinstance(data, str):
        data_len = len(data)
        if data_len < 1:
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must be longer than or equal to 1 characters", value=data, name="" + (name_prefix or "data") + "", rule='minLength')
    return data

def validate_https___flux_batch_local_schemas_manifest_schema_json___defs_safename(data, custom_formats={}, name_prefix=None):
    if not isinstance(data, (str)):
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must be string", value=data, name="" + (name_prefix or "data") + "", rule='type')
    try:
        if not (isinstance(data, str) and data == '.' or isinstance(data, str) and data == '..'):
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must be one of ['.', '..']", value=data, name="" + (name_prefix or "data") + "", rule='enum')
    except (JsonSchemaValueException, JsonSchemaValuesException): pass
    else:
        raise JsonSchemaValueException("" + (name_prefix or "data") + " must NOT match a disallowed definition", value=data, name="" + (name_prefix or "data") + "", rule='not')
    if isinstance(data, str):
        if not REGEX_PATTERNS['^[A-Za-z0-9._-]{1,64}$'].search(data):
            raise JsonSchemaValueException("" + (name_prefix or "data") + " must match pattern ^[A-Za-z0-9._-]{1,64}$", value=data, name="" + (name_prefix or "data") + "", rule='pattern')
    return data

CHECKS = {
    'manifest': validate_https___flux_batch_local_schemas_manifest_schema_json,
    'manifest#/$defs/run': validate_https___flux_batch_local_schemas_manifest_schema_json___defs_run,
    'prompt-object': validate_https___flux_batch_local_schemas_prompt_object_schema_json,
    'prompt-object#/$defs/fields': validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields,
    'prompt-object#/$defs/fields/properties/prompt': validate_https___flux_batch_local_schemas_prompt_object_schema_json___defs_fields_properties_prompt,
    'ai-record': validate_https___flux_batch_local_schemas_ai_record_schema_json,
}
