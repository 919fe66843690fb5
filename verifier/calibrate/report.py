"""The calibration report, Chinese first then English, as Markdown and HTML from one list of blocks."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier.common.files import write_output
from verifier.core.results import Thresholds
from verifier.calibrate.metrics import ConfidenceInterval
from verifier.calibrate.peers import SystemResult, side_by_side
from verifier.calibrate.quality_study import BandCheck, QualityStudy
from verifier.calibrate.thresholds import DuplicateArithmetic, Recommendation, ReviewBand, TailModel

AGE_GAP_IDENTITIES = ("clapton",)  # the face set's README: the same man decades apart


@dataclass(frozen=True)
class Block:
    """One piece of the report: heading, paragraph, bullet list, table, image or code."""

    kind: str
    content: Any
    level: int = 2


@dataclass
class CalibrationReport:
    """Everything the report explains."""

    pack_id: str
    data_description: str
    date: str
    own: SystemResult
    peers: list[SystemResult]
    intervals: dict[str, ConfidenceInterval]
    models: list[TailModel]
    duplicate: DuplicateArithmetic
    current: Thresholds
    recommendation: Recommendation
    target_fmr: float
    n_identities: int
    n_images: int
    plots: dict[str, str]
    quality: QualityStudy | None = None
    band: BandCheck | None = None
    band_current: BandCheck | None = None
    notes: list[str] = field(default_factory=list)
    target_fnmr: float = 1e-3
    workload: ReviewBand | None = None
    workload_current: ReviewBand | None = None


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2%}"


def _ci(ci: ConfidenceInterval | None, pct: bool = True) -> str:
    if ci is None:
        return "-"
    f = _pct if pct else (lambda v: f"{v:.3f}")
    return f"{f(ci.estimate)} [{f(ci.low)}, {f(ci.high)}]"


def _hardest(r: CalibrationReport, k: int = 5) -> list[list[str]]:
    s = r.own.scored
    gen = [(float(s.scores[i]), *s.pair_names(i)) for i in range(s.scores.size) if s.same[i]]
    imp = [(float(s.scores[i]), *s.pair_names(i)) for i in range(s.scores.size) if not s.same[i]]
    rows = [["genuine 真匹配（最低）", f"{a} – {b}", f"{v:.3f}"] for v, a, b in sorted(gen)[:k]]
    rows += [["impostor 冒认（最高）", f"{a} – {b}", f"{v:.3f}"] for v, a, b in sorted(imp, reverse=True)[:k]]
    return [["kind 类别", "pair 照片对", "score 分数"], *rows]


def build_blocks(r: CalibrationReport) -> list[Block]:
    """The report content in order."""
    rec, cur, own = r.recommendation, r.current, r.own
    d = own.to_dict()
    n_gen, n_imp = d["genuine"], d["impostor"]
    b: list[Block] = [Block("h", f"人脸比对准确率与阈值校准报告 / Accuracy and threshold calibration — {r.pack_id}", 1)]
    b.append(Block("p", f"数据 / Data: {r.data_description}. 日期 / Date: {r.date}. {r.n_images} 张照片、{r.n_identities} 人；"
                        f"{n_gen} 个真匹配对（同一人）与 {n_imp} 个冒认对（不同人）。/ {r.n_images} images of {r.n_identities} people; "
                        f"{n_gen} genuine pairs (same person) and {n_imp} impostor pairs (different people)."))
    if own.scored.unusable:
        b.append(Block("p", "无法使用的照片（不计入配对）/ Unusable images (their pairs are left out): "
                       + ", ".join(f"{k} ({v})" for k, v in own.scored.unusable.items())))
    for note in r.notes:
        b.append(Block("p", note))

    b.append(Block("h", "一、结论 / Summary"))
    eer_ci = r.intervals.get("eer")
    rows = [["threshold 阈值", "current 现值", "recommended 建议", "95% CI 置信区间", "basis 依据", "why (English)", "原因（中文）"]]
    ci_key = {"accept": f"threshold@{r.target_fmr:g}", "reject": "reject", "duplicate": "duplicate"}
    for c, now in zip(rec.choices(), (cur.accept, cur.reject, cur.duplicate)):
        rows.append([c.name, f"{now:.3f}", f"{c.value:.3f}", _ci(r.intervals.get(ci_key[c.name]), False), c.basis, c.why_en, c.why_zh])
    b.append(Block("table", rows))
    b.append(Block("list", [
        f"等错误率 EER = {_ci(eer_ci)}（95% 置信区间，按人重抽样）。EER 是误识率与拒真率相等时的错误率，越低越好。",
        f"EER = {_ci(eer_ci)} (95% interval from resampling people, not pairs). The EER is where the false-match and "
        "false-non-match rates are equal; lower is better.",
        "决策规则：分数 ≥ accept 判为同一人（通过）；分数 < reject 判为不一致（送身份复核）；两者之间送人工复核。",
        "Decision rule: score ≥ accept is a match; score < reject is a mismatch (sent to identity re-review); anything between goes to a reviewer.",
        f"选取方法：accept 取冒认（异人）分数分布上误识率 ≤ {r.target_fmr:g} 的点（误判“通过”意味着冒名者可能取得学历注册）；reject 取同人分数分布上"
        f"拒真率 ≤ {r.target_fnmr:g} 的点（真学生被送去身份复核是严重事件）；两者之间由人工复核（只花复核人员一分钟）。",
        f"How they are chosen: accept from the impostor distribution at FMR ≤ {r.target_fmr:g} (a false match lets an impersonator "
        f"register a degree); reject from the genuine distribution at FNMR ≤ {r.target_fnmr:g} (a genuine graduate sent to identity "
        "re-review is a serious event for the student); what lies between costs a reviewer a minute.",
    ]))
    if r.workload is not None:
        w, w0 = r.workload, r.workload_current
        rows = [["thresholds 阈值", "genuine: match / review / mismatch 同人：通过/复核/不一致", "impostor: match / review / mismatch 异人：通过/复核/不一致",
                 "reviews per 1,000 graduates 每千名毕业生复核数"]]
        for label, band in (("recommended 建议", w), ("current 现值", w0)):
            if band is not None:
                rows.append([label, f"{band.genuine_match:.2%} / {band.genuine_review:.2%} / {band.genuine_mismatch:.3%}",
                             f"{band.impostor_match:.4%} / {band.impostor_review:.2%} / {band.impostor_mismatch:.2%}",
                             f"{band.reviews_per_1000_graduates:.0f}"])
        b.append(Block("table", rows))
        b.append(Block("p", "复核工作量按“几乎所有毕业生都是本人”估算：每千名毕业生中同人对落入复核区间的数量。异人一栏说明冒名者会被如何处理："
                            "落入复核区间的由人工发现，低于 reject 的直接送身份复核。/ The workload assumes almost every graduate is genuine: "
                            "genuine pairs in the review band per thousand graduates. The impostor columns say what happens to an "
                            "impersonator: in the band a reviewer catches them, below reject they go straight to identity re-review."))
    if eer_ci is not None and eer_ci.high == 0:
        b.append(Block("p", f"样本中真匹配与冒认分数完全分开，所以 EER 与区间都是 0。这不代表错误率为 0：按“三分之一法则”，"
                            f"{r.n_identities} 人时 95% 上限约为 3/{r.n_identities} = {3 / max(r.n_identities, 1):.0%}。 / "
                            f"Genuine and impostor scores do not overlap in this sample, so the EER and its interval are 0. That is not "
                            f"a zero error rate: by the rule of three, with {r.n_identities} people the 95% upper bound is about "
                            f"3/{r.n_identities} = {3 / max(r.n_identities, 1):.0%}."))

    b.append(Block("h", "二、误识率与拒真率 / Error rates at fixed false-match rates"))
    if own.ten_fold is not None:
        b.append(Block("p", f"10 折准确率 / 10-fold accuracy: {own.ten_fold.mean:.2%} ± {own.ten_fold.std:.2%} ({own.ten_fold_basis}); "
                            f"EER {own.eer.eer:.2%}."))
    rows = [["FMR (FAR) target 目标误识率", "threshold 阈值", "TAR 通过率", "FNMR 拒真率 [95% CI]", "supported? 样本是否足够"]]
    for op in own.operating_points:
        key = f"fnmr@{op.target_fmr:g}"
        rows.append([f"{op.target_fmr:g}", f"{op.threshold:.3f}", _pct(1 - op.fnmr) if op.supported else "-", _ci(r.intervals.get(key)),
                     ("是 / yes: " if op.supported else "否 / no: ") + op.note])
    b.append(Block("table", rows))
    b.append(Block("p", "要“看到”误识率 p，至少需要约 3/p 个冒认对（1e-2 需 300 对，1e-3 需 3,000 对，1e-4 需 30,000 对）。样本不够时，"
                        "表中数字只是样本内最严格的点，不能当作该误识率下的性能。/ Observing a false-match rate p needs about 3/p impostor "
                        "pairs (300 for 1e-2, 3,000 for 1e-3, 30,000 for 1e-4). Where the sample is too small, the row only shows the "
                        "strictest point the sample has; it is not a measurement at that FMR."))
    for key in ("roc", "det", "hist"):
        if key in r.plots:
            b.append(Block("img", (r.plots[key], key.upper())))
    b.append(Block("p", "ROC：横轴误识率（对数），纵轴通过率；曲线越靠左上越好。DET：两轴都是正态分位刻度的错误率，越靠左下越好；"
                        "若两类分数没有重叠，DET 上没有可画的点。直方图：蓝色为同一人，橙色为不同人，黄色区间为人工复核区间。/ "
                        "ROC: false-match rate (log) across, true-match rate up; better curves hug the top left. DET: both error "
                        "rates on normal-deviate axes; better curves sit low and left, and there is nothing to draw when the two score "
                        "sets do not overlap. Histogram: blue = same person, orange = different people, yellow = the review band."))
    b.append(Block("table", _hardest(r)))

    b.append(Block("h", "三、查重阈值的计算 / How the duplicate threshold is derived"))
    b.append(Block("p", "全库查重时，N 名学生两两比较 N(N-1)/2 次。即使每一对误报的概率极小，乘以这么多对也会变成可观的误报数量。"
                        "样本里的冒认对太少，无法直接看到如此小的概率，因此用模型拟合冒认分数的上尾并外推：/ A duplicate sweep over N "
                        "students compares N(N-1)/2 pairs, so even a tiny per-pair false-match probability adds up. The sample cannot "
                        "reach such small probabilities directly, so a model of the upper impostor tail extrapolates:"))
    b.append(Block("list", [m.describe() for m in r.models]
                   + ([] if any(m.kind == "gpd" for m in r.models) else
                      ["Generalised Pareto fit skipped: the top 10% holds fewer than 100 impostor scores / 冒认对太少，未做广义帕累托尾部拟合"])))
    b.append(Block("code", "\n".join(r.duplicate.lines())))
    rows = [["N 学生数", "pairs 比较对数", "per-pair FMR 每对允许误报率", "threshold 阈值", "GPD 95% interval 区间",
             f"expected false pairs at {r.duplicate.current:.3f} 现值下预计误报"]]
    for t in r.duplicate.table:
        ci = f"[{t['gpd_low']:.3f}, {t['gpd_high']:.3f}]" if "gpd_low" in t else "-"
        rows.append([f"{t['gallery_size']:,}", f"{t['pairs']:,}", f"{t['per_pair_fmr']:.2e}", f"{t['threshold']:.3f}", ci, f"{t['expected_at_current']:.3g}"])
    b.append(Block("table", rows))
    dup = rec.duplicate.value
    caught = float((own.scored.genuine >= dup).mean()) if n_gen else math.nan
    dup_ci = r.intervals.get("duplicate")
    b.append(Block("p", f"在 {dup:.3f} 时，样本中 {caught:.0%} 的真匹配对（同一人的不同照片）仍会被查重找出；同一张照片或同期照片的分数更高。"
                        f"按人重抽样的区间：{_ci(dup_ci, False)}。模型假设冒认分数的尾部像正态分布一样迅速变薄；真实学生库（同龄、同样的证件照"
                        f"背景与姿态）冒认分数可能更高、尾部更厚，因此应在本校数据上重新运行。/ At {dup:.3f}, {caught:.0%} of this sample's "
                        f"genuine pairs (different photos of one person) would still be found by the sweep; copies of one photo or photos "
                        f"taken close in time score higher. Identity-bootstrap interval: {_ci(dup_ci, False)}. The model assumes the impostor "
                        "tail thins like a normal one; a real student population (same age, same ID-photo background and pose) likely "
                        "has higher impostor scores and a heavier tail, so rerun this on the university's own photos."))

    if r.quality is not None and r.band is not None:
        q, band = r.quality, r.band
        b.append(Block("h", "四、照片质量的影响 / Quality study"))
        b.append(Block("p", f"把每张照片裁成 295×413 证件照，再分别施加模糊、缩小、人脸被裁切、头部歪斜、曝光不足、曝光过度、重度 JPEG 压缩"
                            f"（轻、中、重三级），与同一人其他照片比较。共 {len(q.copies)} 张降质副本、{len(q.pairs)} 个真匹配对。/ Each photo "
                            f"was framed as a 295×413 ID portrait and degraded (blur, small size, partial-face crop, head roll, under- "
                            f"and over-exposure, heavy JPEG; mild, moderate, severe) and compared with the person's other portraits: "
                            f"{len(q.copies)} degraded copies, {len(q.pairs)} genuine pairs."))
        rows = [["degradation 降质", "level 程度", "strength 强度", "face found 检出", "mean score 平均分", "mean drop 平均下降", "lowest 最低",
                 "max impostor vs good 冒认最高", "max impostor both poor 双方降质冒认最高", "sharpness", "brightness", "inter-eye px"]]
        for s in q.summary():
            m = s.metric_means
            rows.append([s.degradation, s.level, f"{s.strength:g}", f"{s.usable}/{s.copies}", f"{s.mean_score:.3f}", f"{s.mean_drop:.3f}",
                         f"{s.min_score:.3f}", f"{s.max_impostor:.3f}", f"{s.max_impostor_both:.3f}", f"{m.get('sharpness', math.nan):.0f}",
                         f"{m.get('brightness', math.nan):.0f}", f"{m.get('inter_eye_px', math.nan):.0f}"])
        b.append(Block("table", rows))
        for key in ("quality", "levels"):
            if key in r.plots:
                b.append(Block("img", (r.plots[key], key)))
        th = band.thresholds
        b.append(Block("p", f"建议阈值（accept {th.accept:.3f}，reject {th.reject:.3f}）下，轻度与中度降质的 {band.match + band.review + band.mismatch} 个真匹配对："
                            f"{band.match} 个通过，{band.review} 个进入人工复核，{band.mismatch} 个低于 reject。/ Under the recommended thresholds "
                            f"(accept {th.accept:.3f}, reject {th.reject:.3f}), of the {band.match + band.review + band.mismatch} genuine pairs with a mild "
                            f"or moderate degradation: {band.match} match, {band.review} go to review, {band.mismatch} fall below reject."))
        if band.failing:
            b.append(Block("table", [["pair 照片对", "degradation", "score", "below quality floor 低于质量下限"]] + [
                [f"{p.image} – {p.other}", f"{p.degradation} {p.level}", f"{p.score:.3f}", ", ".join(p.below_floor) or "-"] for p in band.failing]))
        b.append(Block("p", f"低于 reject 的 {band.mismatch} 对中有 {band.routed_by_quality} 对的降质照片低于质量下限（清晰度、亮度或两眼间距不合格，"
                            "与入学照片质量检查的标准一致）。对这类照片，分数无论高低都不可信：建议“按质量分流”——任一照片低于质量下限时一律送人工复核"
                            "并要求重新采集，而不是判为不一致。把 reject 继续下调来容纳它们会让大量冒认对进入复核，因此不这样做。/ "
                            f"Of the {band.mismatch} pairs below reject, {band.routed_by_quality} have a degraded photo below the quality floor "
                            "(sharpness, brightness or inter-eye distance failing the intake photo-check limits). For such photos the score "
                            "is not trustworthy either way: route any pair with a photo below the floor to review and re-collect the photo "
                            "rather than calling it a mismatch. Lowering reject far enough to catch them would flood the review band with impostors."))
        b.append(Block("p", f"冒认对：降质照片与他人正常照片比较 {band.impostor_pairs} 对中，{band.impostor_review} 对落入复核区间，"
                            f"{band.impostor_match} 对超过 accept。两张都严重降质（尤其是重度模糊、过曝）的不同人照片之间分数会明显升高，"
                            "这对全库查重尤其重要：查重前应排除低于质量下限的照片。/ Impostors: of "
                            f"{band.impostor_pairs} degraded-vs-good impostor pairs, {band.impostor_review} land in the review band and "
                            f"{band.impostor_match} reach accept. Two badly degraded photos of different people (heavy blur, over-exposure) "
                            "score much higher than two good ones, which matters most for the duplicate sweep: leave photos below the "
                            "quality floor out of it, or review their hits by hand."))

    b.append(Block("h", "五、年龄差距 / Age gap"))
    s = own.scored
    age_rows = [["pair 照片对", "score 分数", "decision 判定"]]
    for i in range(s.scores.size):
        a, c = s.pair_names(i)
        if s.same[i] and any(a.startswith(x + "_") for x in AGE_GAP_IDENTITIES):
            v = float(s.scores[i])
            dec = "match 通过" if v >= rec.accept.value else ("review 复核" if v >= rec.reject.value else "mismatch 不一致")
            age_rows.append([f"{a} – {c}", f"{v:.3f}", dec])
    if len(age_rows) > 1:
        b.append(Block("table", age_rows))
        extra = ""
        if r.quality is not None:
            cl = [p for p in r.quality.pairs if p.identity in AGE_GAP_IDENTITIES and p.level in ("mild", "moderate")]
            n_rev = sum(1 for p in cl if rec.reject.value <= p.score < rec.accept.value)
            n_low = sum(1 for p in cl if p.score < rec.reject.value)
            extra = (f" 质量研究中，这对照片再叠加轻/中度降质后的 {len(cl)} 个比较里，{n_rev} 个落入复核区间，{n_low} 个低于 reject（均为质量下限以下的照片）。"
                     f" / In the quality study, with a mild or moderate degradation on top of the age gap, {n_rev} of {len(cl)} comparisons "
                     f"land in the review band and {n_low} fall below reject (photos below the quality floor).")
        b.append(Block("p", "clapton 两张照片是同一人相隔数十年，是样本中最难的真匹配对。它的分数是全部真匹配对中最低的，但仍高于 accept；"
                            "年龄差更大或照片质量更差时，分数会落入 reject 与 accept 之间的复核区间，由人工判断，而不是直接判为不一致。"
                            "这正是 reject 采用 AgeDB-30（跨年龄数据集）上的数值、低于 accept 的原因。/ The two clapton photos show the same man "
                            "decades apart, the hardest genuine pair in the set: the lowest genuine score, still above accept. A wider age "
                            "gap or a poorer photo moves such a pair into the band between reject and accept, where a person decides, "
                            "instead of a mismatch; that is why reject sits below accept at the age-gap (AgeDB-30) figure." + extra))
    else:
        b.append(Block("p", "本数据没有标注年龄差距的照片对。/ This data has no pair marked as an age gap."))

    b.append(Block("h", "六、分组结果 / Per-group figures"))
    b.append(Block("p", "本数据没有标注人种（如东亚面孔）、年龄差距或姿态的分组标签，因此无法给出分组误识率/拒真率；单一阈值对某一组的代价也无法在此测量。"
                        "需要：带东亚面孔标签的数据、AgeDB/CALFW 式跨年龄对、CFP-FP/CPLFW 式姿态对（放入 ../shared/eval/ 后重跑 verifier calibrate）。"
                        " / This data carries no group label (East-Asian faces, age gap, pose), so no per-group error rates can be given and "
                        "what one threshold costs a group cannot be measured here. Needed: East-Asian-labelled data, AgeDB/CALFW-style "
                        "age-gap pairs, CFP-FP/CPLFW-style pose pairs (place them under ../shared/eval/ and rerun verifier calibrate)."))

    b.append(Block("h", "七、与其他系统对比 / Other systems on the same pairs"))
    b.append(Block("table", side_by_side([own, *r.peers])))
    b.append(Block("p", "同一批照片对、同一套指标。face_recognition（dlib）的分数是负欧氏距离，阈值 0.6 为其库默认值。“(n/s)”表示冒认对数量不足以测量该误识率。"
                        " / Same pairs, same metrics. face_recognition (dlib) scores are minus the Euclidean distance; 0.6 is the library's "
                        "default. “(n/s)” marks an FMR the impostor count cannot support."))
    if not r.peers:
        b.append(Block("p", "未运行其他系统（未安装 face_recognition，也未给出 --peer-pack）。/ No peer ran (face_recognition not installed, no --peer-pack)."))

    b.append(Block("h", "八、局限 / Limits"))
    supported = [op.target_fmr for op in own.operating_points if op.supported]
    b.append(Block("list", [
        f"样本 {r.n_identities} 人、{r.n_images} 张照片、{n_imp:,} 个异人对；可实测的最低误识率约为 3/{n_imp:,} = {3 / max(n_imp, 1):.1e}"
        f"（{'、'.join(f'{f:g}' for f in supported) or '无标准点'}可测）。/ {r.n_identities} people, {r.n_images} photos, {n_imp:,} impostor "
        f"pairs: the lowest FMR measured rather than extrapolated is about 3/{n_imp:,} = {3 / max(n_imp, 1):.1e} "
        f"(measurable: {', '.join(f'{f:g}' for f in supported) or 'none of the standard points'}).",
        *([f"这么小的样本只是冒烟测试集，不能据此下低误识率的结论。/ A sample this small is a smoke set: no claim at low FMRs rests on it."]
          if n_imp < 30_000 else []),
        "同一人的照片对彼此相关，所以区间按人重抽样；人数少时区间本身也不可靠。/ Pairs of one person are correlated, hence the "
        "identity bootstrap; with few people the interval itself is rough.",
        "样本多为欧美公众人物的生活照，与中国高校学生的证件照不同；阈值应在本校照片上重新校准（verifier calibrate --write-pack）。/ "
        "The photos are mostly Western public figures in everyday pictures, unlike Chinese students' ID photos; recalibrate on the "
        "university's own photos (verifier calibrate --write-pack).",
        "降质是合成的，只能说明分数移动的方向和大致幅度。/ The degradations are synthetic: they show the direction and rough size of score movements.",
    ]))
    return b


def _md_table(rows: list[list[str]]) -> str:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    out = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(esc[0])]
    out += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(out)


def to_markdown(blocks: list[Block]) -> str:
    """Render the blocks as Markdown."""
    parts = []
    for blk in blocks:
        if blk.kind == "h":
            parts.append("#" * blk.level + " " + blk.content)
        elif blk.kind == "p":
            parts.append(blk.content)
        elif blk.kind == "list":
            parts.append("\n".join(f"- {x}" for x in blk.content))
        elif blk.kind == "table":
            parts.append(_md_table(blk.content))
        elif blk.kind == "img":
            src, alt = blk.content
            parts.append(f"![{alt}]({src})")
        elif blk.kind == "code":
            parts.append("```\n" + blk.content + "\n```")
    return "\n\n".join(parts) + "\n"


def to_html(blocks: list[Block], title: str) -> str:
    """Render the blocks as one self-contained HTML page (images by relative path)."""
    e = html.escape
    body = []
    for blk in blocks:
        if blk.kind == "h":
            body.append(f"<h{blk.level}>{e(blk.content)}</h{blk.level}>")
        elif blk.kind == "p":
            body.append(f"<p>{e(blk.content)}</p>")
        elif blk.kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in blk.content) + "</ul>")
        elif blk.kind == "table":
            head, *rows = blk.content
            body.append("<table><thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in head) + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows) + "</tbody></table>")
        elif blk.kind == "img":
            src, alt = blk.content
            body.append(f'<figure><img src="{e(src)}" alt="{e(alt)}"></figure>')
        elif blk.kind == "code":
            body.append(f"<pre>{e(blk.content)}</pre>")
    style = ("body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;max-width:1100px;margin:2em auto;line-height:1.5}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
             "th{background:#f0f0f0}img{max-width:100%}pre{background:#f6f6f6;padding:0.8em}")
    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(title)}</title><style>{style}</style></head>'
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_reports(report: CalibrationReport, out: Path) -> tuple[Path, Path]:
    """report.md and report.html in `out`."""
    blocks = build_blocks(report)
    md, page = out / "report.md", out / "report.html"
    write_output(md, to_markdown(blocks).encode("utf-8"))
    write_output(page, to_html(blocks, f"Calibration — {report.pack_id}").encode("utf-8"))
    return md, page
