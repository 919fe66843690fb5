"""The one table of stable reason codes, with Chinese and English messages.

Every failure or warning anywhere in verifier (decode, checks, pipeline,
batch, API) names one of these codes. docs/REASONS.md is generated from this
table (`verifier reasons --markdown`) and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """How a reason affects a result: fail blocks, warn informs."""

    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True)
class ReasonCode:
    """One row of the table."""

    code: str
    severity: Severity
    zh: str
    en: str
    area: str


@dataclass(frozen=True)
class Reason:
    """A reason attached to one result: the code plus what was measured."""

    code: str
    severity: Severity
    message_zh: str
    message_en: str
    measured: Any = None
    limit: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "measured": self.measured,
            "limit": self.limit,
        }


_F, _W = Severity.FAIL, Severity.WARN

_TABLE: tuple[ReasonCode, ...] = (
    # Reading files
    ReasonCode("FILE_NOT_FOUND", _F, "文件不存在", "File does not exist", "file"),
    ReasonCode("OUTPUT_IS_SYMLINK", _F, "输出路径是符号链接，已拒绝写入（如确需写入链接目标，请加 --follow-symlinks）", "Output path is a symlink; refused (--follow-symlinks writes the link's target)", "file"),
    ReasonCode("OUTPUT_IS_DIRECTORY", _F, "输出路径是文件夹，无法作为文件写入", "Output path is a folder, not a file", "file"),
    ReasonCode("OUTPUT_NOT_A_FILE", _F, "输出路径是套接字或块设备，已拒绝写入", "Output path is a socket or a block device; refused", "file"),
    ReasonCode("OUTPUT_NOT_WRITABLE", _F, "输出路径无法检查或写入", "Output path cannot be examined or written", "file"),
    ReasonCode("OUTPUT_DISK_FULL", _F, "磁盘已满，文件未写入（原文件保持不变；释放空间后重新运行即可继续）", "Disk full: the file was not written (any old file is unchanged; free space and run again to continue)", "file"),
    ReasonCode("FONT_CJK_MISSING", _F, "缺少中文字体（请安装 pylopdf-fonts-zh-cn）", "No Chinese font installed (install pylopdf-fonts-zh-cn)", "file"),
    ReasonCode("FILE_UNREADABLE", _F, "文件无法读取（权限或 I/O 错误）", "File cannot be read (permission or I/O error)", "file"),
    ReasonCode("FILE_IS_DIRECTORY", _F, "路径是文件夹而不是文件", "Path is a directory, not a file", "file"),
    ReasonCode("FILE_EMPTY", _F, "文件为空（0 字节）", "File is empty (0 bytes)", "file"),
    ReasonCode("FILE_TOO_LARGE_TO_READ", _F, "文件过大，拒绝读取", "File is too large to read safely", "file"),
    ReasonCode("FILE_NAME_NOT_UTF8", _F, "文件名不是有效的 UTF-8 编码", "File name is not valid UTF-8", "file"),
    ReasonCode("FILE_NAME_UNSAFE", _F, "文件名包含路径穿越或非法字符", "File name contains path traversal or illegal characters", "file"),
    ReasonCode("FILE_NAME_OTHER_STUDENT", _F, "文件名是另一名学生的考生号，与上传目标不符", "File name is another student's candidate number (考生号), not the one uploaded to", "file"),
    # Decoding images
    ReasonCode("IMAGE_NOT_IMAGE", _F, "文件内容不是图片", "File content is not an image", "decode"),
    ReasonCode("IMAGE_FORMAT_UNSUPPORTED", _F, "图片格式不受支持（仅支持 JPEG、PNG）", "Image format not supported (JPEG and PNG only)", "decode"),
    ReasonCode("IMAGE_TRUNCATED", _F, "图片文件不完整（被截断）", "Image file is truncated", "decode"),
    ReasonCode("IMAGE_CORRUPT", _F, "图片数据损坏，无法解码", "Image data is corrupt and cannot be decoded", "decode"),
    ReasonCode("IMAGE_TOO_MANY_PIXELS", _F, "图片像素数超过上限（疑似解压炸弹）", "Image pixel count exceeds the cap (possible decompression bomb)", "decode"),
    ReasonCode("IMAGE_SIZE_CLAIM_IMPLAUSIBLE", _F, "图片声明的尺寸远超其数据所能编码的（疑似解压炸弹）", "Image header claims far more pixels than its data can encode (possible decompression bomb)", "decode"),
    ReasonCode("IMAGE_TOO_SMALL", _F, "图片尺寸过小，无法分析", "Image is too small to analyse", "decode"),
    # Faces
    ReasonCode("FACE_NOT_FOUND", _F, "未检测到人脸", "No face detected", "face"),
    ReasonCode("FACE_MULTIPLE", _F, "检测到多张人脸", "More than one face detected", "face"),
    # Models
    ReasonCode("MODEL_FILE_MISSING", _F, "模型文件缺失", "Model file is missing", "model"),
    ReasonCode("MODEL_CHECKSUM_MISMATCH", _F, "模型文件校验和不符", "Model file checksum does not match the manifest", "model"),
    ReasonCode("MODEL_PACK_UNKNOWN", _F, "未知的模型包", "Unknown model pack", "model"),
    ReasonCode("MODEL_PACK_NO_THRESHOLDS", _F, "模型包没有这种比对的校准阈值（先运行 verifier calibrate）", "The model pack has no calibrated thresholds for this comparison (run verifier calibrate first)", "model"),
    ReasonCode("ENGINE_SETTING_INVALID", _F, "推理引擎或精度设置无效（VERIFIER_ENGINE / VERIFIER_PRECISION）", "Inference engine or precision setting is invalid (VERIFIER_ENGINE / VERIFIER_PRECISION)", "model"),
    ReasonCode("ENGINE_UNAVAILABLE", _F, "所选推理引擎或精度在本机不可用", "The chosen inference engine or precision is not available on this machine", "model"),
    # Comparison input
    ReasonCode("PAIRS_FILE_INVALID", _F, "配对文件格式错误", "Pairs file is malformed", "input"),
    # Batch comparison (graduation vs admission)
    ReasonCode("BATCH_MISSING_ADMISSION", _F, "缺少录取照片", "Admission photo is missing", "batch"),
    ReasonCode("BATCH_MISSING_GRADUATION", _F, "缺少毕业照片", "Graduation photo is missing", "batch"),
    ReasonCode("BATCH_MISSING_ID_CARD", _F, "缺少身份证照片", "ID-card photo is missing", "batch"),
    ReasonCode("BATCH_FOLDER_MISSING", _F, "照片文件夹不存在", "Photo folder does not exist", "batch"),
    ReasonCode("BATCH_OUT_UNWRITABLE", _F, "报告输出文件夹无法写入", "Report output folder cannot be written", "batch"),
    ReasonCode("BATCH_NOT_PROCESSED", _F, "照片文件存在但本次未处理（运行被中断？）", "Photo file exists but was not processed (run interrupted?)", "batch"),
    ReasonCode("BATCH_SEVERAL_FILES", _W, "同一学生有多个照片文件，已取第一个", "Several photo files for one student; the first was used", "batch"),
    ReasonCode("COMPARE_FACE_TOO_SMALL", _F, "人脸太小，无法可靠比对", "Face too small to compare reliably", "compare"),
    ReasonCode("COMPARE_REVIEW_BAND", _W, "相似度处于人工复核区间", "Similarity lies in the manual-review band", "compare"),
    ReasonCode("COMPARE_LOW_QUALITY_REVIEW", _W, "照片质量差，相似度不可靠，转人工复核", "Poor photo quality makes the score unreliable: sent to manual review", "compare"),
    ReasonCode("COMPARE_MISMATCH", _F, "相似度低于拒绝阈值，疑似非同一人", "Similarity below the reject threshold: likely not the same person", "compare"),
    # Photo specification (profiles)
    ReasonCode("SPEC_FORMAT", _F, "图片格式不符合规格（录取照片应为 JPEG）", "Image format does not meet the specification (admission photos must be JPEG)", "spec"),
    ReasonCode("IDCARD_SCAN_CROPPED", _W, "身份证正面扫描件：已裁出人像，卡面其余内容（姓名、号码、住址）未保存", "Scan of the ID card's front: the portrait was cropped out; the rest of the card (name, number, address) was not kept", "spec"),
    ReasonCode("IDCARD_SCAN_NO_PORTRAIT", _F, "身份证扫描件上找不到人像", "No portrait found on the ID-card scan", "spec"),
    ReasonCode("IDCARD_SCAN_SEVERAL_FACES", _F, "身份证扫描件上有多张人脸，无法确定人像", "Several faces on the ID-card scan; the portrait cannot be told apart", "spec"),
    ReasonCode("SPEC_EXTENSION", _F, "文件扩展名不符合规格（应为 .jpg）", "File extension does not meet the specification (.jpg required)", "spec"),
    ReasonCode("SPEC_NAME_PATTERN", _F, "文件名不是有效的考生号", "File name is not a valid candidate number (考生号)", "spec"),
    ReasonCode("SPEC_KSH_NOT_ON_ROSTER", _F, "考生号不在名单中", "Candidate number (考生号) is not on the roster", "spec"),
    ReasonCode("SPEC_FILE_TOO_LARGE", _F, "文件大小超过规格上限", "File size exceeds the specification's limit", "spec"),
    ReasonCode("SPEC_FILE_TOO_SMALL", _F, "文件大小低于规格下限", "File size is below the specification's minimum", "spec"),
    ReasonCode("SPEC_WIDTH", _F, "图片宽度超出规格范围", "Image width is outside the specification's range", "spec"),
    ReasonCode("SPEC_HEIGHT", _F, "图片高度超出规格范围", "Image height is outside the specification's range", "spec"),
    ReasonCode("SPEC_LANDSCAPE", _F, "图片为横向，应为竖向（纵向）", "Image is landscape; a portrait photo is required", "spec"),
    ReasonCode("SPEC_SIZE_NOT_RECOMMENDED", _W, "尺寸与推荐尺寸比例不符", "Size differs from the recommended size and aspect ratio", "spec"),
    ReasonCode("PROFILE_INVALID", _F, "规格配置文件无效", "Specification profile file is invalid", "spec"),
    # Photo quality
    ReasonCode("QUALITY_FACE_LOW_CONFIDENCE", _W, "人脸检测置信度低", "Face detector confidence is low", "quality"),
    ReasonCode("QUALITY_FACE_TOO_SMALL", _F, "人脸在照片中占比过小", "Face is too small in the photo", "quality"),
    ReasonCode("QUALITY_FACE_TOO_LARGE", _W, "人脸在照片中占比过大", "Face is too large in the photo", "quality"),
    ReasonCode("QUALITY_FACE_OFF_CENTRE", _W, "人脸未居中", "Face is not centred", "quality"),
    ReasonCode("QUALITY_FACE_CUT_OFF", _F, "头部或下巴被裁切（人脸贴近或超出边缘）", "Head or chin is cut off (face at or beyond the edge)", "quality"),
    ReasonCode("QUALITY_POSE_YAW", _F, "头部左右转动过大（未正视镜头）", "Head turned too far left or right (yaw)", "quality"),
    ReasonCode("QUALITY_POSE_PITCH", _F, "头部抬头或低头过大", "Head tilted too far up or down (pitch)", "quality"),
    ReasonCode("QUALITY_POSE_ROLL", _F, "头部歪斜过大", "Head tilted sideways too far (roll)", "quality"),
    ReasonCode("QUALITY_BLURRY", _F, "人脸区域模糊", "Face region is blurry", "quality"),
    ReasonCode("QUALITY_UNDEREXPOSED", _F, "照片过暗（曝光不足）", "Photo is too dark (underexposed)", "quality"),
    ReasonCode("QUALITY_OVEREXPOSED", _F, "照片过亮（曝光过度）", "Photo is too bright (overexposed)", "quality"),
    ReasonCode("QUALITY_HIGHLIGHTS_CLIPPED", _W, "人脸高光溢出（过曝区域）", "Highlights on the face are clipped", "quality"),
    ReasonCode("QUALITY_NOT_COLOUR", _F, "照片为黑白或单色（如怀旧色），应为彩色", "Photo is grayscale or monochrome (e.g. sepia); colour is required", "quality"),
    ReasonCode("QUALITY_BACKGROUND_NOT_PLAIN", _W, "背景不是纯色", "Background is not plain", "quality"),
    ReasonCode("QUALITY_BACKGROUND_COLOUR", _W, "背景颜色不符合规格", "Background colour does not meet the specification", "quality"),
    ReasonCode("QUALITY_INTER_EYE_TOO_SMALL", _F, "两眼间距像素过少（人脸分辨率不足）", "Too few pixels between the eyes (face resolution too low)", "quality"),
    ReasonCode("CHECK_INTERNAL_ERROR", _F, "检查时发生内部错误（请报告）", "Internal error while checking this photo (please report)", "quality"),
    # Rosters and reconciliation
    ReasonCode("ROSTER_UNREADABLE", _F, "名单文件无法读取（不存在、无权限、编码无法识别或文件损坏）", "Roster file cannot be read (missing, no permission, unknown encoding or damaged)", "roster"),
    ReasonCode("ROSTER_FORMAT_UNSUPPORTED", _F, "名单格式不受支持（请另存为 .xlsx 或 CSV）", "Roster format not supported (save it as .xlsx or CSV)", "roster"),
    ReasonCode("ROSTER_TOO_LARGE", _F, "名单文件过大，拒绝读取", "Roster file is larger than the configured cap; refused", "roster"),
    ReasonCode("ROSTER_UNZIPPED_TOO_LARGE", _F, "XLSX 名单解压后过大或部件过多（疑似压缩炸弹），拒绝读取", "XLSX roster is too large once unzipped, or has too many parts (possible zip bomb); refused", "roster"),
    ReasonCode("ROSTER_TOO_MANY_STRINGS", _F, "XLSX 名单的共享字符串过多，拒绝读取", "XLSX roster holds more shared strings than the cap; refused", "roster"),
    ReasonCode("ROSTER_TOO_MANY_ROWS", _F, "名单行数超过上限，拒绝读取", "Roster has more rows than the cap; refused", "roster"),
    ReasonCode("ROSTER_TOO_MANY_COLUMNS", _F, "名单列数超过上限，拒绝读取", "Roster has more columns than the cap; refused", "roster"),
    ReasonCode("ROSTER_CELL_TOO_LONG", _F, "名单中有单元格文字超过长度上限，拒绝读取", "A roster cell holds more characters than the cap; refused", "roster"),
    ReasonCode("ROSTER_EMPTY", _F, "名单文件为空", "Roster file is empty", "roster"),
    ReasonCode("ROSTER_NO_HEADER", _F, "名单中找不到表头（列名）", "Roster has no recognisable header row", "roster"),
    ReasonCode("ROSTER_MISSING_COLUMN", _F, "名单缺少必需的列（考生号、姓名）", "Roster lacks a required column (考生号 exam number, 姓名 name)", "roster"),
    ReasonCode("ROSTER_ROW_MISSING_KSH", _F, "名单行缺少考生号，已跳过", "Roster row has no 考生号 (exam number); skipped", "roster"),
    ReasonCode("ROSTER_ROW_MISSING_NAME", _F, "名单行缺少姓名，已跳过", "Roster row has no 姓名 (name); skipped", "roster"),
    ReasonCode("ROSTER_KSH_INVALID", _F, "考生号格式不符，已跳过该行", "考生号 (exam number) does not match the pattern; row skipped", "roster"),
    ReasonCode("ROSTER_KSH_DUPLICATE", _F, "考生号重复，仅保留第一次出现的行", "Duplicate 考生号 (exam number); only the first row is kept", "roster"),
    ReasonCode("ROSTER_ID_NUMBER_INVALID", _W, "身份证号格式、出生日期或校验位不符（该行仍已载入）", "ID number fails the GB 11643 format, birth-date or check-digit test (row still loaded)", "roster"),
    ReasonCode("RECON_NO_PHOTO", _F, "名单中的学生没有照片", "Student on the roster has no photo", "reconcile"),
    ReasonCode("RECON_NOT_ON_ROSTER", _F, "照片的考生号不在名单中", "Photo's 考生号 (exam number) is not on the roster", "reconcile"),
    ReasonCode("RECON_MULTIPLE_FILES", _W, "同一考生有多个照片文件", "More than one photo file for one student", "reconcile"),
    ReasonCode("RECON_SAME_BYTES", _F, "不同考生号下的照片文件完全相同", "Identical photo files under different 考生号 (exam numbers)", "reconcile"),
    ReasonCode("RECON_SAME_PICTURE", _F, "不同考生号下疑似同一张照片（感知哈希相近）", "Apparently the same picture under different 考生号 (near-identical perceptual hash)", "reconcile"),
    # Photo fixer
    ReasonCode("FIX_FACE_TOO_SMALL", _F, "人脸过小，需放大超过上限才能制成证件照（请重新采集）", "Face too small: the ID photo would need more upscaling than allowed (re-collect)", "fixer"),
    ReasonCode("FIX_CROP_OUTSIDE_IMAGE", _F, "人脸周围画面不足，证件照取景超出原图过多（请重新采集）", "Too little picture around the face: too much of the ID framing lies outside the source (re-collect)", "fixer"),
    ReasonCode("FIX_SIZE_LIMIT", _F, "最低 JPEG 质量下仍超过文件大小上限", "Even at the lowest allowed JPEG quality the file exceeds the size limit", "fixer"),
    ReasonCode("FIX_KSH_UNKNOWN", _F, "无法确定考生号（文件名不是考生号，名单中也无对应学号）", "Cannot tell the candidate number (考生号): the file name is not one and no roster 学号 maps to it", "fixer"),
    ReasonCode("FIX_KSH_DUPLICATE", _F, "多个源文件对应同一考生号，需人工选定", "Several source files map to the same candidate number (考生号); a person must choose", "fixer"),
    ReasonCode("FIX_OUT_INSIDE_SRC", _F, "输出文件夹与源文件夹不能相互包含", "The output folder and the source folder must not contain each other", "fixer"),
    ReasonCode("FIX_OUT_UNUSABLE", _F, "输出文件夹无法创建或写入", "The output folder cannot be created or written", "fixer"),
    # Store
    ReasonCode("STORE_DB_URL_INVALID", _F, "数据库地址无效（仅支持 sqlite:/// 与 postgresql://）", "Database URL is invalid (sqlite:/// and postgresql:// only)", "store"),
    ReasonCode("STORE_DB_UNREACHABLE", _F, "无法连接数据库", "Cannot connect to the database", "store"),
    ReasonCode("STORE_DB_NOT_MIGRATED", _F, "数据库未初始化或版本过旧，请先运行 verifier db upgrade", "Database is not initialised or is out of date; run `verifier db upgrade` first", "store"),
    ReasonCode("STORE_DB_TOO_NEW", _F, "数据库版本比本程序新，请升级 verifier", "Database schema is newer than this verifier knows; upgrade verifier", "store"),
    ReasonCode("STORE_DB_BUSY", _F, "数据库繁忙，多次重试后仍未完成", "Database stayed busy (locked) through every retry", "store"),
    ReasonCode("STORE_ID_KEY_INVALID", _F, "身份证号哈希密钥无效（至少 16 个字符）", "ID-number hash key is invalid (at least 16 characters)", "store"),
    ReasonCode("STORE_STUDENT_UNKNOWN", _F, "库中没有该考生号的学生", "No student with this 考生号 (exam number) in the database", "store"),
    ReasonCode("STORE_COLLEGE_UNKNOWN", _F, "库中没有该学院的学生", "No student of this 学院 (college) in the database", "store"),
    ReasonCode("STORE_PHOTO_KIND_INVALID", _F, "照片类型无效（应为 admission、graduation 或 id_card）", "Photo kind is invalid (admission, graduation or id_card)", "store"),
    ReasonCode("STORE_PHOTO_FILE_MISSING", _F, "照片文件缺失", "Stored photo file is missing", "store"),
    ReasonCode("STORE_PHOTO_CHECKSUM_MISMATCH", _F, "照片文件内容与记录的 SHA-256 不符", "Stored photo file does not match its recorded SHA-256", "store"),
    ReasonCode("STORE_PHOTO_PURGED", _F, "照片已按保存期限清除", "Photo was purged under the retention rules", "store"),
    ReasonCode("STORE_PHOTO_NOT_KEPT", _F, "该照片只有记录、没有图像（身份证扫描件上找不到人像，未保存任何内容）", "This photo is a record without an image (no portrait was found on the ID-card scan, so nothing of it was kept)", "store"),
    ReasonCode("STORE_EMBEDDING_INVALID", _F, "特征向量无效（维度为零或含非有限值）", "Embedding vector is invalid (empty or not finite)", "store"),
    ReasonCode("STORE_COMPARISON_INVALID", _F, "比对记录的照片与学生或照片类型不符", "Comparison photos do not belong to the student or have the wrong kind", "store"),
    ReasonCode("STORE_DUPLICATE_SAME_STUDENT", _F, "重复人脸候选的两张照片属于同一学生", "Both photos of a duplicate-face candidate belong to the same student", "store"),
    ReasonCode("STORE_CASE_UNKNOWN", _F, "复核案件不存在", "Review case does not exist", "store"),
    ReasonCode("STORE_CASE_TYPE_INVALID", _F, "复核案件类型或对象类型无效", "Review case type or subject type is invalid", "store"),
    ReasonCode("STORE_CASE_TRANSITION_INVALID", _F, "复核案件状态转换不允许", "Review case state transition is not allowed", "store"),
    ReasonCode("STORE_CASE_OUTCOME_INVALID", _F, "结案结论缺失或无效", "Case outcome is missing or invalid", "store"),
    ReasonCode("STORE_CASE_MEMBER_UNKNOWN", _F, "该案件中没有此成员", "This case has no such member", "store"),
    ReasonCode("STORE_AUDIT_IMMUTABLE", _F, "审计记录只能追加，不能修改或删除", "Audit events are append-only; they cannot be changed or deleted", "store"),
    ReasonCode("STORE_IMPORT_ID_CHANGED", _F, "身份证号与库中记录不一致，该行未更新（已记入审计，请管理员人工核实）", "ID number differs from the stored one; row not updated (audited; an administrator verifies it by hand)", "store"),
    ReasonCode("STORE_IMPORT_ID_LIMIT", _F, "该密钥近期身份证号不一致次数过多，身份证号暂不核对，该行未导入（请联系管理员）", "Too many ID-number mismatches from this key recently; ID numbers are not compared for now and the row was not imported (ask an administrator)", "store"),
    ReasonCode("STORE_NOTE_INVALID", _F, "备注为空、过长或含空字符（NUL）", "Note is empty, too long or contains a NUL character", "store"),
    ReasonCode("STORE_PURGE_NO_CRITERIA", _F, "清除需指定 --graduated-before 或 --intake", "Purge needs --graduated-before or --intake", "store"),
    ReasonCode("STORE_DATE_INVALID", _F, "日期格式无效（应为 YYYY-MM-DD）", "Date is invalid (YYYY-MM-DD expected)", "store"),
    # HTTP API
    ReasonCode("API_KEY_MISSING", _F, "缺少 API 密钥（Authorization: Bearer 或 X-API-Key）", "API key missing (Authorization: Bearer or X-API-Key)", "api"),
    ReasonCode("API_KEY_INVALID", _F, "API 密钥无效", "API key is not valid", "api"),
    ReasonCode("API_KEY_EXPIRED", _F, "API 密钥已过期", "API key has expired", "api"),
    ReasonCode("API_KEY_REVOKED", _F, "API 密钥已吊销", "API key has been revoked", "api"),
    ReasonCode("API_KEY_UNKNOWN", _F, "没有该编号的 API 密钥", "No API key with this id", "api"),
    ReasonCode("API_ROLE_INVALID", _F, "角色无效（admissions、academic_affairs、reviewer、admin）", "Role is invalid (admissions, academic_affairs, reviewer, admin)", "api"),
    ReasonCode("API_ROLE_FORBIDDEN", _F, "该密钥的角色无权执行此操作", "This key's role may not do this", "api"),
    ReasonCode("API_SCOPE_FORBIDDEN", _F, "请求的学院/学习中心不在该密钥的范围内", "The 学院/学习中心 asked for is outside this key's scope", "api"),
    ReasonCode("API_REQUEST_INVALID", _F, "请求参数或请求体无效", "Request parameters or body are invalid", "api"),
    ReasonCode("API_BODY_TOO_LARGE", _F, "请求体超过大小上限", "Request body exceeds the size limit", "api"),
    ReasonCode("API_NOT_FOUND", _F, "接口或资源不存在", "No such endpoint or resource", "api"),
    ReasonCode("API_METHOD_NOT_ALLOWED", _F, "该接口不支持此 HTTP 方法", "HTTP method not allowed on this endpoint", "api"),
    ReasonCode("API_BUSY", _F, "服务繁忙（比对并发已满），请稍后重试", "Server busy (inference slots full); retry later", "api"),
    ReasonCode("API_TIMEOUT", _F, "请求处理超时", "Request took longer than the time limit", "api"),
    ReasonCode("API_NOT_READY", _F, "服务尚未就绪（模型加载中或数据库不可用）", "Service not ready (models loading or database unreachable)", "api"),
    ReasonCode("API_INTERNAL_ERROR", _F, "服务器内部错误（请报告）", "Internal server error (please report)", "api"),
    ReasonCode("API_PATH_OUTSIDE_ROOT", _F, "路径不在服务器允许的文件夹内", "Path lies outside the server's permitted folder", "api"),
    ReasonCode("API_JOB_UNKNOWN", _F, "后台任务不存在", "Background job does not exist", "api"),
    ReasonCode("API_JOB_BUSY", _F, "同类后台任务正在运行", "A job of this kind is already running", "api"),
    ReasonCode("API_JOB_FINISHED", _F, "后台任务已结束，无法取消", "Background job has already ended; nothing to cancel", "api"),
    ReasonCode("API_SWEEP_UNAVAILABLE", _F, "重复人脸筛查功能尚未安装", "The duplicate-face sweep is not available in this build", "api"),
    ReasonCode("API_CASE_CLAIMED", _F, "该案件正由其他复核人处理", "Another reviewer holds this case", "api"),
    ReasonCode("API_STUDENT_OUT_OF_SCOPE", _F, "该行不是本密钥学院/学习中心范围内已有的学生，未导入（新学生由不限范围的密钥导入）", "Row is not a student already on this key's 学院/学习中心 rolls; not imported (new students are imported by an unscoped key)", "api"),
    ReasonCode("API_KEY_NAME_INVALID", _F, "密钥名称为空、过长或含控制字符", "Key name is empty, too long or contains control characters", "api"),
    ReasonCode("API_KEY_SCOPE_INVALID", _F, "密钥范围无效（空白、过长、含控制字符或数量过多）", "Key scope is invalid (blank, too long, control characters or too many)", "api"),
    ReasonCode("API_KEY_EXPIRY_INVALID", _F, "密钥到期日须晚于当前时间且不超过 2999-12-31", "Key expiry must lie in the future and no later than 2999-12-31", "api"),
    ReasonCode("API_DATE_OUT_OF_RANGE", _F, "日期超出允许范围（2000-01-01 至 2999-12-31）", "Date is outside the accepted range (2000-01-01 to 2999-12-31)", "api"),
    ReasonCode("API_HEADER_TIMEOUT", _F, "客户端发送请求头过慢，连接已关闭", "The client sent its request headers too slowly; connection closed", "api"),
    ReasonCode("API_BODY_TIMEOUT", _F, "客户端发送请求体过慢，连接已关闭", "The client sent its request body too slowly; connection closed", "api"),
    ReasonCode("API_MULTIPART_INVALID", _F, "上传表单格式错误，或字段/文件数量、单个字段大小超出上限", "Upload form is malformed, or has too many fields or files, or a field that is too large", "api"),
    ReasonCode("API_AUTH_THROTTLED", _F, "无效密钥尝试过多，请稍后再试", "Too many refused API keys from this address or for this key; retry later", "api"),
    # Duplicate sweep
    ReasonCode("SWEEP_THRESHOLD_INVALID", _F, "重复人脸阈值无效（应在 0 与 1 之间）", "Duplicate-face threshold is invalid (between 0 and 1)", "sweep"),
    ReasonCode("SWEEP_OUT_UNWRITABLE", _F, "重复人脸筛查报告文件夹无法创建或写入", "The duplicate-sweep report folder cannot be created or written", "sweep"),
    ReasonCode("SWEEP_ALREADY_RUNNING", _F, "另一个重复人脸筛查正在运行（同一数据目录）", "Another duplicate sweep is running on this home folder", "sweep"),
    ReasonCode("SWEEP_SHARDS_FAILED", _F, "分片检索未完成（见失败的分片），本次筛查未写入任何结果", "Sharded search did not finish (see the failed shards); this sweep wrote no results", "sweep"),
    # Ray cluster (--ray)
    ReasonCode("CLUSTER_RAY_MISSING", _F, "未安装 Ray：请安装可选组件 verifier[cluster]", "Ray is not installed: install the optional extra verifier[cluster]", "cluster"),
    ReasonCode("CLUSTER_UNREACHABLE", _F, "无法连接或启动 Ray 集群", "The Ray cluster cannot be reached or started", "cluster"),
    ReasonCode("CLUSTER_WORKER_LOST", _F, "Ray 工作进程失败次数超过重启上限；已完成的结果已保存，重新运行同一命令即可继续", "A Ray worker failed more often than its restarts allow; finished results are stored, run the same command again to resume", "cluster"),
)

REASONS: dict[str, ReasonCode] = {r.code: r for r in _TABLE}
assert len(REASONS) == len(_TABLE), "duplicate reason code"


def reason(code: str, measured: Any = None, limit: Any = None, severity: Severity | None = None) -> Reason:
    """Build a Reason for a code from the table (KeyError for unknown codes)."""
    row = REASONS[code]
    return Reason(code, severity or row.severity, row.zh, row.en, measured, limit)


def markdown_table() -> str:
    """Render the table as docs/REASONS.md."""
    lines = [
        "# Reason codes",
        "",
        "Generated by `verifier reasons --markdown` from `verifier/common/reasons.py`; a test keeps this file equal to the code.",
        "Codes are stable identifiers: reports, the batch runner and the API all use them.",
        "",
        "| code | area | default severity | 中文 | English |",
        "|---|---|---|---|---|",
    ]
    for r in _TABLE:
        lines.append(f"| `{r.code}` | {r.area} | {r.severity.value} | {r.zh} | {r.en} |")
    return "\n".join(lines) + "\n"


class VerifierError(Exception):
    """An error that carries a stable reason code."""

    def __init__(self, code: str, detail: str = "", measured: Any = None, limit: Any = None):
        self.reason = reason(code, measured, limit)
        self.detail = detail
        super().__init__(f"{code}: {self.reason.message_en}" + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> tuple:
        """Pickle by code and detail, so an error raised in a worker process or Ray actor reaches the caller intact."""
        return (type(self), (self.reason.code, self.detail, self.reason.measured, self.reason.limit))
