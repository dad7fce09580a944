"""A licence authority for the tests: the seal world of tests/test_seal_making.py, an official
seal of the issuing organisation authorised for the licence service, the shipped types and
the organisation registered as issuer of each, through the client ``dept-app``."""

from typing import NamedTuple

from licence import issuance, registry, types
from licence.registry import LICENCE_SERVICE
from seal.registry import SealRecord

from tests.fixtures.seal import HOLDER, USCC, World, make_world, new_seal

BUSINESS = "11100000MB0143028R001"
FOOD = "11100000MB0143028R002"
PHYSICIAN = "11100000MB0015237P001"
CLIENT = "dept-app"
VERIFY_URL = "https://licence.example.gov.cn"
ENTERPRISE_USCC = "91350100M000100Y43"
PERSON_ID = "11010519491231002X"   # GB 11643's own example: born 1949-12-31, female

BUSINESS_FACE = {
    "entity_type": "有限责任公司（自然人投资或控股）", "legal_representative": "张三", "registered_capital": "10000000",
    "established_on": "2019-03-01", "term_from": "2019-03-01", "term_to": "长期", "domicile": "福州市鼓楼区测试路1号",
    "business_scope": "软件开发；信息技术咨询服务；数据处理和存储支持服务。（依法须经批准的项目，经相关部门批准后方可开展经营活动）"}
FOOD_FACE = {"legal_representative": "李四", "domicile": "福州市鼓楼区测试路2号", "premises": "福州市鼓楼区测试路2号一层",
             "business_form": "餐饮服务经营者", "items": "热食类食品制售；冷食类食品制售", "licence_no": "JY23501020000123",
             "supervising_body": "鼓楼区市场监督管理局", "supervisors": "王五", "complaint_phone": "12315", "signed_by": "赵六"}
PHYSICIAN_FACE = {"sex": "女", "born_on": "1949-12-31", "level": "执业医师", "category": "临床", "scope": "内科专业",
                  "practice_region": "北京市", "institution": "北京测试医院", "licence_no": "110110000012345"}


def business_request(**changes) -> dict:
    body = {"type_code": BUSINESS, "issuer_code": USCC,
            "holder": {"name": "福州测试科技有限公司", "code": ENTERPRISE_USCC, "code_type": "001"},
            "face": dict(BUSINESS_FACE)}
    body.update(changes)
    return body


def food_request() -> dict:
    return {"type_code": FOOD, "issuer_code": USCC,
            "holder": {"name": "福州测试餐饮有限公司", "code": ENTERPRISE_USCC, "code_type": "001"}, "face": dict(FOOD_FACE)}


def physician_request() -> dict:
    return {"type_code": PHYSICIAN, "issuer_code": USCC,
            "holder": {"name": "王芳", "code": PERSON_ID, "code_type": "111"}, "face": dict(PHYSICIAN_FACE)}


class Authority(NamedTuple):
    world: World
    seal: SealRecord
    issuer_name: str = HOLDER


def make_authority(session, tmp_path) -> Authority:
    world = make_world(session, tmp_path)
    seal = new_seal(world, seal_type="official", name="深圳市测试局公章", clients=(LICENCE_SERVICE,))
    types.sync_shipped(session)
    for type_code in (BUSINESS, FOOD, PHYSICIAN):
        registry.register_issuer(session, type_code=type_code, issuer_code=USCC, issuer_name=HOLDER, es_id=seal.es_id,
                                 client_ids=[CLIENT], area_code="440300", actor="officer-1")
    session.commit()
    return Authority(world, seal)


def issue(authority: Authority, body: dict, **options):
    options.setdefault("client_id", CLIENT)
    options.setdefault("verify_url", VERIFY_URL)
    world = authority.world
    return issuance.issue(world.session, world.keystore, body, **options)
