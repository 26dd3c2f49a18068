//! Automatic answers to the questions residents ask most (from the seed's walk-through): how
//! to get a photo receipt, where an order is, how to book, fees and materials. A question
//! none of them matches gets one saying that a person will reply, and when.

/// One automatic answer and the words that call for it.
struct Answer {
    topic: &'static str,
    keywords: &'static [&'static str],
    text: &'static str,
}

const ANSWERS: &[Answer] = &[
    Answer {
        topic: "order",
        keywords: &["订单", "进度", "审核", "下载", "到哪", "结果"],
        text: "照片提交后会由检测中心人工审核，审核结果会通过微信「服务通知」提醒您。\
请在小程序底部的「订单」页查看订单状态，审核通过后可在订单详情中下载回执单（回执单上的图像号就是回执编号）。",
    },
    Answer {
        topic: "receipt",
        keywords: &["回执", "图像号", "照片", "相片", "拍照"],
        text: "办理身份证相片回执：1. 用手机拍一张半身照（表情自然、露出五官和肩膀、无饰品、脸部无阴影，白墙前最佳）；\
2. 在小程序首页选择证件类型，上传照片并填写资料后提交订单；\
3. 照片按官方要求调整后由检测中心审核，结果通过「服务通知」提醒；\
4. 在底部「订单」页下载回执单。",
    },
    Answer {
        topic: "booking",
        keywords: &["预约", "怎么办", "流程", "大厅", "时间", "改约", "取消"],
        text: "办理身份证请先预约：在小程序中登录后点击「我要预约」→「户政业务」，选择办证大厅、日期和时段，填写申请人信息后确认。\
未满16周岁的居民由监护人陪同，可预约「周六家庭专场」。请按预约时间到所选大厅的户籍窗口办理；如需改约，请先取消原预约。",
    },
    Answer {
        topic: "fees",
        keywords: &["费用", "多少钱", "收费", "材料", "带什么", "证件", "补领", "换领", "邮寄", "领证"],
        text: "所需材料：原身份证（丢失补领无需提供，但需书面说明）、广东省居民身份证数字相片采集回执；个别情况需户口簿，丢失补领可能需遗失声明。\
费用：换领20元，丢失或损坏补领40元。领证可选择邮寄或到办理点自取（约20-30个工作日）。",
    },
];

/// Working hours of the people who answer (Dongguan time), as the fallback says them.
pub const STAFF_HOURS: &str = "工作日 9:00-18:00";

/// The fallback's topic: a person answers.
pub const PERSON: &str = "person";

/// The answer to `question` and its topic; the fallback ([`PERSON`]) when nothing matches.
pub fn answer(question: &str) -> (&'static str, String) {
    ANSWERS
        .iter()
        .find(|a| a.keywords.iter().any(|k| question.contains(k)))
        .map(|a| (a.topic, a.text.to_owned()))
        .unwrap_or_else(|| {
            (
                PERSON,
                format!(
                    "您好，您的留言已收到，客服人员会在{STAFF_HOURS}内尽快回复您（一般不超过一个工作日）。\
您也可以发送「回执」「订单」「预约」「费用」查看常见问题的解答。"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn common_questions_get_their_answers() {
        assert_eq!(answer("照片回执怎么弄").0, "receipt");
        assert_eq!(answer("我的订单审核到哪了").0, "order");
        assert_eq!(answer("怎么预约换身份证").0, "booking");
        assert_eq!(answer("补领要多少钱").0, "fees");
        let (topic, text) = answer("你好");
        assert_eq!(topic, "person");
        assert!(text.contains("9:00-18:00"), "{text}");
    }
}
