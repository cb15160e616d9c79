"""Plausible Chinese names for synthetic places, units and people (deterministic)."""

from __future__ import annotations

import numpy as np

PLACE_STEMS = (
    "桂湖",
    "大丰",
    "三河",
    "新繁",
    "斑竹园",
    "石板滩",
    "清流",
    "军屯",
    "木兰",
    "龙虎",
    "泰兴",
    "马家",
    "新民",
    "锦门",
    "蜀龙",
    "香城",
    "宝光",
    "升庵",
    "天元",
    "北星",
    "金光",
    "永丰",
    "正因",
    "东林",
    "西华",
    "南丰",
    "褚家",
    "禾登",
    "团结",
    "友爱",
    "凤凰",
    "桤木",
    "毗河",
    "清白",
    "锦水",
    "芙蓉",
    "文昌",
    "高桥",
    "柳林",
    "黄林",
    "红旗",
    "五星",
    "联合",
    "和平",
)
UNIT_NAMES = (
    "区委办公室",
    "区政府办公室",
    "区委组织部",
    "区委宣传部",
    "区委政法委",
    "区发展和改革局",
    "区教育局",
    "区科技和经济信息化局",
    "区公安分局",
    "区民政局",
    "区司法局",
    "区财政局",
    "区人力资源和社会保障局",
    "区自然资源局",
    "区生态环境局",
    "区住房和城乡建设局",
    "区交通运输局",
    "区水务局",
    "区农业农村局",
    "区商务局",
    "区文化广电旅游局",
    "区卫生健康局",
    "区退役军人事务局",
    "区应急管理局",
    "区审计局",
    "区市场监督管理局",
    "区统计局",
    "区医疗保障局",
    "区城市管理局",
    "区林业园林局",
    "区信访局",
    "区机关事务服务中心",
    "区税务局",
    "区人民法院",
    "区人民检察院",
    "区总工会",
    "团区委",
    "区妇联",
    "区科协",
    "区残联",
    "区红十字会",
    "区人民医院",
    "区中医医院",
    "区妇幼保健院",
    "区疾病预防控制中心",
    "新都供电公司",
    "区投资促进局",
    "区行政审批局",
    "区经济运行局",
    "区国资金融局",
    "区融媒体中心",
    "区档案馆",
    "区图书馆",
    "区社区发展治理委员会",
    "区委编办",
    "区委统战部",
    "区工商联",
    "区政协办公室",
    "区人大办公室",
    "区纪委监委",
    "区委党校",
)
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩"
    "冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国红梅志文斌俊婷雪琴晨宇浩然子涵欣怡思远"
)


def place_names(count: int, suffix: str, rng: np.random.Generator) -> list[str]:
    """Distinct names like 桂湖街道, numbered once the stems run out."""
    stems = list(PLACE_STEMS)
    rng.shuffle(stems)
    names = []
    for i in range(count):
        stem = stems[i % len(stems)]
        round_ = i // len(stems)
        names.append(f"{stem}{suffix}" if round_ == 0 else f"{stem}{round_ + 1}{suffix}")
    return names


def unit_names(count: int) -> list[str]:
    return [
        UNIT_NAMES[i] if i < len(UNIT_NAMES) else f"区属第{i - len(UNIT_NAMES) + 1}事业单位"
        for i in range(count)
    ]


def person_names(count: int, rng: np.random.Generator) -> list[str]:
    surnames = rng.integers(len(SURNAMES), size=count)
    lengths = rng.integers(1, 3, size=count)
    given = rng.integers(len(GIVEN), size=(count, 2))
    return [
        SURNAMES[s] + "".join(GIVEN[g] for g in given[i, :n])
        for i, (s, n) in enumerate(zip(surnames.tolist(), lengths.tolist(), strict=True))
    ]


def phone_numbers(count: int, rng: np.random.Generator) -> list[str]:
    """Distinct mainland mobile numbers: a carrier prefix and a shuffled serial."""
    prefixes = ("139", "138", "137", "136", "135", "186", "185", "180", "177", "159", "158", "150")
    serials = rng.choice(100_000_000, size=count, replace=False)
    picks = rng.integers(len(prefixes), size=count)
    return [f"{prefixes[p]}{s:08d}" for p, s in zip(picks.tolist(), serials.tolist(), strict=True)]
