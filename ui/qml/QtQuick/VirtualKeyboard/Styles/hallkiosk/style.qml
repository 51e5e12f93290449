// The hall terminal's keyboard: large keys and large candidates for elderly citizens.
//
// Sizes are in pixels: pinyin_panel.qml binds keyboardDesignWidth/Height to the panel's real
// size, so scaleHint is 1 and a key's text is exactly keyTextPx tall. Colours follow ui/theme.py
// (contrast at least 7:1). The words on function keys come from the application's translations
// through the context property hallLabels (set by ui/pinyin_keyboard.py).

import QtQuick
import QtQuick.VirtualKeyboard
import QtQuick.VirtualKeyboard.Styles

KeyboardStyle {
    id: hallStyle

    readonly property color panelColor: "#dfe6ee"
    readonly property color keyColor: "#ffffff"
    readonly property color keyPressedColor: "#c9d6e6"
    readonly property color keyBorderColor: "#0a2f5c"
    readonly property color keyTextColor: "#1a1a1a"
    readonly property color functionKeyColor: "#0a4a8f"
    readonly property color functionKeyPressedColor: "#0a2f5c"
    readonly property color functionKeyTextColor: "#ffffff"
    readonly property color candidateBarColor: "#ffffff"
    readonly property color candidateTextColor: "#1a1a1a"
    readonly property color candidateSeparatorColor: "#0a2f5c"
    readonly property color popupColor: "#0a2f5c"
    readonly property color popupTextColor: "#ffffff"
    readonly property int keyTextPx: 40
    readonly property int functionKeyTextPx: 36
    readonly property int candidateTextPx: 44
    readonly property int keyGap: 8
    readonly property var labels: typeof hallLabels !== "undefined" ? hallLabels : ({})

    function label(name, fallback) {
        return labels[name] !== undefined ? labels[name] : fallback
    }

    // Overridden by the panel with its real size; these keep the style usable on its own.
    keyboardDesignWidth: 1080
    keyboardDesignHeight: 424
    keyboardRelativeLeftMargin: 4 / keyboardDesignWidth
    keyboardRelativeRightMargin: 4 / keyboardDesignWidth
    keyboardRelativeTopMargin: 4 / keyboardDesignHeight
    keyboardRelativeBottomMargin: 4 / keyboardDesignHeight

    keyboardBackground: Rectangle {
        color: hallStyle.panelColor
    }

    component Face: Rectangle {
        property bool pressed: false
        property bool functionKey: false
        radius: 10
        anchors.fill: parent
        anchors.margins: hallStyle.keyGap / 2
        color: functionKey ? (pressed ? hallStyle.functionKeyPressedColor : hallStyle.functionKeyColor)
                           : (pressed ? hallStyle.keyPressedColor : hallStyle.keyColor)
        border.width: 2
        border.color: hallStyle.keyBorderColor
    }

    component FaceText: Text {
        property bool functionKey: false
        anchors.fill: parent
        horizontalAlignment: Text.AlignHCenter
        verticalAlignment: Text.AlignVCenter
        color: functionKey ? hallStyle.functionKeyTextColor : hallStyle.keyTextColor
        font.pixelSize: functionKey ? hallStyle.functionKeyTextPx : hallStyle.keyTextPx
        font.bold: true
        elide: Text.ElideNone
    }

    keyPanel: KeyPanel {
        objectName: "keyPanel"
        Face {
            pressed: control.pressed
            opacity: control.enabled ? 1.0 : 0.4
            FaceText {
                text: control.displayText
                font.capitalization: control.uppercased ? Font.AllUppercase : Font.MixedCase
            }
        }
    }

    backspaceKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed
            FaceText { functionKey: true; text: hallStyle.label("backspace", "\u232B") }
        }
    }

    languageKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed
            FaceText { functionKey: true; text: Qt.locale(InputContext.locale).nativeLanguageName }
        }
    }

    enterKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed
            FaceText { functionKey: true; text: hallStyle.label("enter", "\u23CE") }
        }
    }

    hideKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed
        }
    }

    shiftKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed || InputContext.capsLockActive
            FaceText { functionKey: true; text: "\u21E7" }
            Rectangle {
                visible: InputContext.shiftActive || InputContext.capsLockActive
                anchors.left: parent.left
                anchors.right: parent.right
                anchors.bottom: parent.bottom
                anchors.margins: 10
                height: 6
                color: "#ffffff"
            }
        }
    }

    spaceKeyPanel: KeyPanel {
        Face {
            pressed: control.pressed
            FaceText {
                text: hallStyle.label("space", "")
                font.pixelSize: hallStyle.functionKeyTextPx
            }
        }
    }

    symbolKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed
            // Qt shows "&123" and "ABC": words an older person reads instead
            FaceText {
                functionKey: true
                text: /[0-9]/.test(control.displayText) ? hallStyle.label("to_digits", control.displayText)
                                                         : hallStyle.label("to_letters", control.displayText)
            }
        }
    }

    modeKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed || control.mode
            FaceText { functionKey: true; text: control.displayText }
        }
    }

    handwritingKeyPanel: KeyPanel {
        Face {
            functionKey: true
            pressed: control.pressed
        }
    }

    // The letter just touched, shown large above the finger.
    characterPreviewMargin: 0
    characterPreviewDelegate: Item {
        property string text
        property string flickLeft
        property string flickTop
        property string flickRight
        property string flickBottom
        Rectangle {
            anchors.fill: parent
            radius: 10
            color: hallStyle.popupColor
            Text {
                anchors.centerIn: parent
                text: parent.parent.text
                color: hallStyle.popupTextColor
                font.pixelSize: 56
                font.bold: true
            }
        }
    }

    alternateKeysListItemWidth: 96
    alternateKeysListItemHeight: 110
    alternateKeysListDelegate: Item {
        width: hallStyle.alternateKeysListItemWidth
        height: hallStyle.alternateKeysListItemHeight
        Text {
            anchors.centerIn: parent
            text: model.text
            color: hallStyle.popupTextColor
            font.pixelSize: hallStyle.keyTextPx
            font.bold: true
        }
    }
    alternateKeysListHighlight: Rectangle {
        color: hallStyle.functionKeyColor
        radius: 10
    }
    alternateKeysListBackground: Rectangle {
        color: hallStyle.popupColor
        radius: 10
    }

    // The candidate bar above the keys: each candidate is a large button.
    selectionListHeight: 96
    selectionListDelegate: SelectionListItem {
        id: candidate
        objectName: "candidate"
        readonly property string text: display
        width: Math.max(candidateLabel.implicitWidth + 48, 96)
        Text {
            id: candidateLabel
            anchors.centerIn: parent
            text: candidate.text
            color: hallStyle.candidateTextColor
            font.pixelSize: hallStyle.candidateTextPx
            font.bold: candidate.ListView.isCurrentItem
        }
        Rectangle {
            anchors.right: parent.right
            anchors.verticalCenter: parent.verticalCenter
            width: 2
            height: parent.height * 0.6
            color: hallStyle.candidateSeparatorColor
        }
    }
    selectionListBackground: Rectangle {
        color: hallStyle.candidateBarColor
        border.width: 2
        border.color: hallStyle.candidateSeparatorColor
    }

    popupListDelegate: SelectionListItem {
        width: popupLabel.implicitWidth + 48
        height: 96
        Text {
            id: popupLabel
            anchors.centerIn: parent
            text: display
            color: hallStyle.popupTextColor
            font.pixelSize: hallStyle.candidateTextPx
        }
    }
    popupListBackground: Rectangle {
        color: hallStyle.popupColor
    }

    languagePopupListEnabled: false

    functionPopupListDelegate: Item {
        width: 96
        height: 96
    }
}
