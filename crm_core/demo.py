"""Realistic Chinese demo data: teams, reps, companies, people, contacts and follow-ups."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from .activities.models import Activity
from .cli.users import ensure_user
from .customers.models import Contact, Customer, Tag
from .db import session, utcnow
from .org.models import Team, UserProfile
from .org.tree import refresh_paths

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红"
REGIONS = [
    # province, city, districts, landline area code, team
    ("上海市", "上海市", ["浦东新区", "闵行区", "徐汇区", "嘉定区"], "021", "华东区"),
    ("江苏省", "苏州市", ["工业园区", "吴中区", "相城区"], "0512", "华东区"),
    ("浙江省", "杭州市", ["西湖区", "滨江区", "余杭区"], "0571", "华东区"),
    ("广东省", "深圳市", ["南山区", "福田区", "宝安区", "龙岗区"], "0755", "华南区"),
    ("广东省", "广州市", ["天河区", "黄埔区", "番禺区"], "020", "华南区"),
    ("北京市", "北京市", ["海淀区", "朝阳区", "丰台区"], "010", "华北区"),
    ("天津市", "天津市", ["滨海新区", "西青区"], "022", "华北区"),
]
NAME_WORDS = [
    "华东",
    "前海",
    "云图",
    "精密",
    "恒通",
    "宏达",
    "鼎盛",
    "瑞丰",
    "天成",
    "博远",
    "海纳",
    "启明",
    "中科",
    "新创",
    "金桥",
    "正泰",
    "联合",
    "东方",
    "智联",
    "长城",
]
INDUSTRY_WORDS = {
    "制造业": ["机械", "精工", "电子", "模具", "汽配"],
    "批发零售": ["商贸", "贸易", "百货", "供应链"],
    "信息技术": ["科技", "软件", "信息技术", "数据"],
    "金融": ["投资", "融资租赁", "资产管理"],
    "教育": ["教育科技", "培训"],
    "医疗": ["医疗器械", "生物科技", "医药"],
    "建筑": ["建设工程", "建筑设计", "装饰工程"],
    "物流": ["物流", "国际货运", "仓储"],
}
STREETS = ["科技", "创业", "人民", "建设", "长江"]
SOURCES = ["官网", "展会", "电话营销", "老客户介绍", "百度推广", "微信"]
TIERS = ["VIP", "A", "B", "C"]
STAGES = ["prospect", "new", "active", "dormant"]
TITLES = ["总经理", "采购经理", "技术总监", "财务经理", "采购专员", "副总经理", "行政主管"]
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "199",
]
FOLLOW_UPS = [
    ("call", "电话沟通采购需求", "客户计划下季度扩大产能，需要报价。"),
    ("visit", "上门拜访", "拜访采购经理，介绍新产品线。"),
    ("wechat", "微信跟进", "发送产品资料和案例。"),
    ("email", "发送报价单", "已发送报价单，等待客户反馈。"),
    ("meeting", "技术交流会", "与技术团队讨论方案细节。"),
]
REPS = [
    ("wangfang", "王", "芳", "华东区"),
    ("lijun", "李", "军", "华东区"),
    ("zhangwei", "张", "伟", "华南区"),
    ("liuyang", "刘", "洋", "华北区"),
]
DEMO_PASSWORD = "demo1234"


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def person_name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
    return rng.choice(SURNAMES) + given


def seed_demo(customers: int = 300, seed: int = 2026) -> dict[str, Any]:
    """Add demo data to an initialised database; returns the logins it created.

    Does nothing (and says so) when customers already exist, so it is safe to run twice.
    """
    s = session()
    if s.scalar(select(func.count()).select_from(Customer)):
        return {"skipped": True, "users": []}
    rng = random.Random(seed)
    head = Team(name="销售部")
    s.add(head)
    s.flush()
    teams = {}
    for name, region in (("华东区", "华东"), ("华南区", "华南"), ("华北区", "华北")):
        teams[name] = Team(name=name, parent_id=head.id, region=region)
        s.add(teams[name])
    s.commit()
    refresh_paths()
    sm = current_app.appbuilder.sm  # type: ignore[attr-defined]
    users = []
    reps_by_team: dict[str, list[Any]] = {}
    for username, last, first, team in REPS:
        ensure_user(
            username,
            DEMO_PASSWORD,
            f"{username}@example.cn",
            "Sales Rep",
            first,
            last,
            check_policy=False,  # the demo's documented password
        )
        user = sm.find_user(username=username)
        s.add(UserProfile(user_id=user.id, team_id=teams[team].id, phone=mobile(rng)))
        reps_by_team.setdefault(team, []).append(user)
        users.append((username, DEMO_PASSWORD, "Sales Rep"))
    tags = [
        Tag(name=n, color=c)
        for n, c in (("重点客户", "red"), ("展会2026", "blue"), ("老客户", "green"))
    ]
    s.add_all(tags)
    s.commit()

    now = utcnow()
    for i in range(customers):
        province, city, districts, area, team = rng.choice(REGIONS)
        industry = rng.choice(list(INDUSTRY_WORDS))
        is_company = rng.random() < 0.85
        if is_company:
            name = (
                f"{city.removesuffix('市')}{rng.choice(NAME_WORDS)}{rng.choice(NAME_WORDS)}"
                f"{rng.choice(INDUSTRY_WORDS[industry])}有限公司"
            )
            phone = f"{area}-{rng.randrange(2, 9)}{rng.randrange(10**6, 10**7)}"
        else:
            name = person_name(rng)
            phone = mobile(rng)
        owner = rng.choice(reps_by_team[team]) if rng.random() < 0.8 else None
        created = now - timedelta(days=rng.randrange(1, 400))
        customer = Customer(
            code=f"C{2026000 + i:07d}",
            name=name
            if s.scalar(select(Customer.id).where(Customer.name == name)) is None
            else f"{name}（{i}）",
            kind="company" if is_company else "person",
            phone=phone,
            email=f"info{i}@example.cn" if is_company else None,
            province=province,
            city=city,
            district=rng.choice(districts),
            address=f"{rng.choice(STREETS)}路{rng.randrange(1, 999)}号",
            industry=industry,
            source=rng.choice(SOURCES),
            tier=rng.choice(TIERS),
            lifecycle_stage=rng.choice(STAGES),
            credit_limit=Decimal(rng.choice([50000, 100000, 200000, 500000])),
            owner_id=owner.id if owner else None,
            team_id=teams[team].id,
            created_at=created,
            pooled_at=None if owner else now - timedelta(days=rng.randrange(1, 30)),
        )
        if rng.random() < 0.3:
            customer.tags.append(rng.choice(tags))
        s.add(customer)
        s.flush()
        for _ in range(rng.randrange(1, 4) if is_company else 0):
            s.add(
                Contact(
                    customer_id=customer.id,
                    name=person_name(rng),
                    title=rng.choice(TITLES),
                    mobile=mobile(rng),
                    email=f"contact{customer.id}{rng.randrange(100)}@example.cn",
                    wechat=f"wx_{rng.randrange(10**6, 10**7)}",
                )
            )
        for _ in range(rng.randrange(0, 4)):
            kind, subject, body = rng.choice(FOLLOW_UPS)
            s.add(
                Activity(
                    kind=kind,
                    subject=subject,
                    body=body,
                    customer_id=customer.id,
                    owner_id=(owner or rng.choice(reps_by_team[team])).id,
                    occurred_at=now - timedelta(days=rng.randrange(0, 60), hours=rng.randrange(24)),
                )
            )
        if i % 200 == 199:
            s.commit()
    s.commit()
    seed_workflow(teams["华东区"].id)
    return {"skipped": False, "users": users}


def seed_workflow(team_id: int) -> None:
    """An assignment rule and an automation rule to show: new manufacturers in Shanghai go to
    华东区 in turn, each with a first follow-up task due in two days."""
    from .lowcode import conditions as cond
    from .workflow.assignment.models import AssignmentRule
    from .workflow.automation import definitions
    from .workflow.automation.models import AutomationRule

    s = session()
    s.add(
        AssignmentRule(
            model="Customer",
            name="上海新客户轮流分配",
            position=10,
            active=True,
            join="all",
            conditions=cond.as_data(cond.parse("city in 上海市,上海")),
            team_id=team_id,
            include_subteams=False,
            strategy="round_robin",
            when_unavailable="pool",
            set_team=True,
        )
    )
    s.flush()
    data = definitions.normalised(
        {
            "label_zh": "上海制造业新客户：分配并安排首次跟进",
            "label_en": "New manufacturers in Shanghai: assign and plan a first follow-up",
            "model": "Customer",
            "trigger": "event",
            "event_type": "customer.created",
            "conditions": ["city in 上海市,上海", "industry eq 制造业"],
            "actions": [
                {"type": "assign", "params": {"rule": "上海新客户轮流分配"}},
                {
                    "type": "create_task",
                    "params": {"subject": "首次跟进：{{ record.name }}", "due_days": "2"},
                },
            ],
        }
    )
    definitions.save(s, AutomationRule(name="shanghai_manufacturing_first_follow_up"), data, None)
    s.commit()
