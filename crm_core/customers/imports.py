"""How customers and contacts come in from spreadsheets: keys, and the headers people use."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..specs import ImportSpec
from .models import Contact, Customer
from .views import CONTACT_LABELS, CUSTOMER_LABELS

CUSTOMER_SYNONYMS = {
    "code": ("客户编号", "客户编码", "客户代码", "编号", "编码"),
    "name": ("客户名称", "公司名称", "企业名称", "单位名称", "客户名", "名称", "公司", "姓名"),
    "kind": ("客户类型", "类型"),
    "phone": ("电话", "手机", "手机号", "手机号码", "联系电话", "电话号码", "联系方式", "Tel"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "邮件", "Email", "Mail"),
    "website": ("网址", "网站", "官网", "URL"),
    "province": ("省", "省份", "所在省份"),
    "city": ("市", "城市", "所在城市"),
    "district": ("区", "区县", "县区"),
    "address": ("地址", "详细地址", "联系地址", "公司地址"),
    "industry": ("行业", "所属行业"),
    "source": ("来源", "客户来源", "获客渠道", "渠道"),
    "lifecycle_stage": ("生命周期", "生命周期阶段", "客户阶段"),
    "uscc": ("统一社会信用代码", "信用代码", "社会信用代码", "税号", "USCC"),
    "credit_limit": ("信用额度", "授信额度"),
    "owner": ("负责人", "客户经理", "销售", "业务员", "所属销售", "跟进人"),
    "team": ("团队", "部门", "所属团队", "所属部门"),
    "notes": ("备注", "说明"),
}
KIND_WORDS = {
    "企业": "company",
    "公司": "company",
    "企业客户": "company",
    "company": "company",
    "个人": "person",
    "个人客户": "person",
    "person": "person",
}
CONTACT_SYNONYMS = {
    "customer": ("客户", "客户名称", "所属客户", "公司", "公司名称", "客户编号"),
    "name": ("姓名", "联系人", "联系人姓名"),
    "title": ("职务", "职位", "头衔"),
    "role": ("角色",),
    "mobile": ("手机", "手机号", "手机号码"),
    "phone": ("电话", "座机", "办公电话"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "Email"),
    "wechat": ("微信", "微信号"),
    "birthday": ("生日", "出生日期"),
    "notes": ("备注",),
}

CUSTOMER_IMPORT = ImportSpec(
    name="customer",
    model=Customer,
    keys=("code", "phone", "email", "uscc", "name"),
    labels=CUSTOMER_LABELS,
    synonyms=CUSTOMER_SYNONYMS,
    exclude=("pooled_at", "last_activity_at", "merged_into_id"),
    generated=("code",),
    aliases={"kind": KIND_WORDS},
    label=_l("Customers"),
)
CONTACT_IMPORT = ImportSpec(
    name="contact",
    model=Contact,
    keys=("mobile", "email"),
    labels=CONTACT_LABELS,
    synonyms=CONTACT_SYNONYMS,
    label=_l("Contacts"),
)
